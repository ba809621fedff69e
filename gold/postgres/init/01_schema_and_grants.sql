-- Schema `gold` and privileges. Runs as the cluster superuser in the Gold database, re-runnable.
\set ON_ERROR_STOP on

REVOKE ALL ON DATABASE :"gold_db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"gold_db" TO :"loader";
GRANT CONNECT ON DATABASE :"gold_db" TO :"reader";

CREATE SCHEMA IF NOT EXISTS gold AUTHORIZATION :"loader";
ALTER SCHEMA gold OWNER TO :"loader";
COMMENT ON SCHEMA gold IS 'TripClick Gold marts, loaded daily by processing/spark/jobs/load_to_postgres.py';

-- The reader may look, never touch: USAGE + SELECT only, also on tables the loader creates later.
REVOKE CREATE ON SCHEMA gold FROM :"reader";
GRANT USAGE ON SCHEMA gold TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"loader" IN SCHEMA gold GRANT SELECT ON TABLES TO :"reader";
