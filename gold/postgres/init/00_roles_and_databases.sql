-- Roles and databases. Runs as the cluster superuser in the `postgres` database, re-runnable.
-- psql variables (set by infrastructure/local/postgres.py, or the compose init wrapper):
--   loader, loader_password, reader, reader_password, reader_statement_timeout, gold_db, airflow_user,
--   airflow_password, airflow_db
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', :'loader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'loader') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'airflow_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'airflow_user') \gexec

-- Passwords are (re)applied on every run so a changed .env takes effect.
ALTER ROLE :"loader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'loader_password';
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
ALTER ROLE :"airflow_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'airflow_password';

-- The reader serves Superset's charts and the PostgreSQL exporter's scrapes. Its sessions start read-only and
-- are bounded, so a runaway query or a forgotten session cannot hold the server. These are defaults a session
-- may change (SET); what the reader cannot change are its privileges (01_schema_and_grants.sql).
-- 20 connections: Superset runs at most 2 workers x 4 threads queries at once and keeps no pool, the exporter
-- holds one, which leaves room for the demo's summaries and a person with psql.
ALTER ROLE :"reader" CONNECTION LIMIT 20;
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = :'reader_statement_timeout';
-- An idle open transaction pins old row versions (VACUUM cannot remove the rows the loader replaced) and makes
-- this file's ALTERs wait: a minute idle in one is a bug. An idle session holds one of the 20 slots; the
-- exporter, the one client that keeps its connection, uses it every scrape (seconds) and reconnects after a
-- longer pause at the price of one failed scrape (pg_up 0 once; the alert on it waits 5 minutes).
ALTER ROLE :"reader" SET idle_in_transaction_session_timeout = '1min';
ALTER ROLE :"reader" SET idle_session_timeout = '15min';

SELECT format('CREATE DATABASE %I OWNER %I', :'gold_db', :'loader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'gold_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'airflow_db', :'airflow_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'airflow_db') \gexec

-- PUBLIC (every role) may CONNECT to and create TEMPORARY tables in a new database: each database is opened to
-- the roles that use it instead. The superuser needs no grant; Gold's grants are in 01_schema_and_grants.sql.
-- Airflow owns its database and has these anyway; explicit, so a change of owner cannot lock it out.
REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC;
REVOKE ALL ON DATABASE :"airflow_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"airflow_db" TO :"airflow_user";
