-- Outcome of the batch steps per pipeline date (processing/cli.py report_date upserts a row whenever a step
-- finishes a date, ok or not). Not a mart: the operator's view, shown on the Superset dashboard
-- TripClick Pipeline health. Runs as the cluster superuser in the Gold database after 01_schema_and_grants.sql;
-- re-runnable.
\set ON_ERROR_STOP on

SET ROLE :"loader";

CREATE TABLE IF NOT EXISTS gold.pipeline_runs (
    step         text             NOT NULL,
    event_date   date             NOT NULL,
    success      boolean          NOT NULL,
    rows         bigint           NOT NULL CHECK (rows >= 0),
    seconds      double precision NOT NULL CHECK (seconds >= 0),
    finished_at  timestamptz      NOT NULL,
    CONSTRAINT pipeline_runs_pk PRIMARY KEY (step, event_date)
);
COMMENT ON TABLE gold.pipeline_runs IS
    'One row per batch step and pipeline date: the outcome of the LAST attempt of that step at that date (each '
    'attempt replaces the row when it ends, ok or not). Written by processing/cli.py report_date as the loader.';
COMMENT ON COLUMN gold.pipeline_runs.step IS
    'Batch job (batch_to_bronze, etl_to_gold, reconcile, load_to_postgres); the lake and postgres stages of '
    'reconcile share the row of reconcile, the later attempt wins.';
COMMENT ON COLUMN gold.pipeline_runs.event_date IS 'Pipeline date the step worked on (PIPELINE_TZ).';
COMMENT ON COLUMN gold.pipeline_runs.success IS 'Whether that attempt finished the date (exit code 0).';
COMMENT ON COLUMN gold.pipeline_runs.rows IS
    'Rows the attempt reported for the date (Bronze rows, Gold mart rows, rows loaded, checks run); 0 when it '
    'ended before its summary line.';
COMMENT ON COLUMN gold.pipeline_runs.seconds IS 'Wall time of the attempt''s work for the date, in seconds.';
COMMENT ON COLUMN gold.pipeline_runs.finished_at IS 'When the attempt ended (the job''s clock).';

-- Explicit grant as well as the default privileges of 01: a table created before 01 ran stays readable too.
GRANT SELECT ON gold.pipeline_runs TO :"reader";

RESET ROLE;
