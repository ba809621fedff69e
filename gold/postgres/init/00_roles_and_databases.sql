-- Roles and databases. Runs as the cluster superuser in the `postgres` database, re-runnable.
-- psql variables (set by infrastructure/local/postgres.py, or the compose init wrapper):
--   loader, loader_password, reader, reader_password, gold_db, airflow_user, airflow_password, airflow_db
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

SELECT format('CREATE DATABASE %I OWNER %I', :'gold_db', :'loader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'gold_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'airflow_db', :'airflow_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'airflow_db') \gexec
