-- Results of the data quality gate (processing/quality.py, run by reconcile --stage lake before the load).
-- Not a mart: the gate writes it even when it stops the load, so analysts see why a day is missing.
-- Runs as the cluster superuser in the Gold database after 10_marts.sql; re-runnable.
\set ON_ERROR_STOP on

SET ROLE :"loader";

CREATE TABLE IF NOT EXISTS gold.dq_results (
    event_date      date        NOT NULL,
    suite           text        NOT NULL,
    expectation     text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('fail', 'warn')),
    success         boolean     NOT NULL,
    observed_value  text,
    run_at          timestamptz NOT NULL,
    CONSTRAINT dq_results_pk PRIMARY KEY (event_date, suite, expectation)
);
COMMENT ON TABLE gold.dq_results IS
    'One row per expectation of the latest data quality gate run of a pipeline date (the gate replaces the '
    'date''s rows in one transaction). A date with a failed severity=fail row was not loaded into the marts.';
COMMENT ON COLUMN gold.dq_results.suite IS 'silver, or the Gold mart the expectation validated.';
COMMENT ON COLUMN gold.dq_results.expectation IS 'Stable expectation name, e.g. unique:dedup_key (processing/quality.py).';
COMMENT ON COLUMN gold.dq_results.severity IS 'fail: a failure stops the load; warn: the day loads, the warning is recorded.';
COMMENT ON COLUMN gold.dq_results.success IS 'Whether the expectation held on the day''s data.';
COMMENT ON COLUMN gold.dq_results.observed_value IS 'What the gate saw (a value, or the unexpected count and examples).';
COMMENT ON COLUMN gold.dq_results.run_at IS 'When the gate ran (UTC).';

GRANT SELECT ON gold.dq_results TO :"reader";

RESET ROLE;
