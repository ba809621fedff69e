-- Live marts: near-real-time counts the streaming job (streaming_to_silver) keeps while the day is replayed.
-- NOT exact and NOT the daily marts: schema `live`, separate from `gold`. load_to_postgres deletes a date's
-- live rows in the transaction that loads its exact marts. Definitions: gold/README.md, "Live marts".
-- Runs as the cluster superuser in the Gold database after 01_schema_and_grants.sql; re-runnable.
-- Writer: the loader role (processing/live_sink.py). Reader: USAGE + SELECT only.
\set ON_ERROR_STOP on

CREATE SCHEMA IF NOT EXISTS live AUTHORIZATION :"loader";
ALTER SCHEMA live OWNER TO :"loader";
COMMENT ON SCHEMA live IS
    'TripClick live marts: per-minute counts written by the streaming job every few seconds during the replay; '
    'provisional, replaced by the exact marts of schema gold when the day is loaded.';

REVOKE CREATE ON SCHEMA live FROM :"reader";
GRANT USAGE ON SCHEMA live TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"loader" IN SCHEMA live GRANT SELECT ON TABLES TO :"reader";

SET ROLE :"loader";

-- clicks_per_minute ----------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS live.clicks_per_minute (
    event_date     date        NOT NULL,
    minute         timestamptz NOT NULL,
    source_server  text        NOT NULL,
    clicks         bigint      NOT NULL CHECK (clicks > 0),
    updated_at     timestamptz NOT NULL,
    CONSTRAINT clicks_per_minute_pk PRIMARY KEY (event_date, minute, source_server)
);
COMMENT ON TABLE live.clicks_per_minute IS
    'Provisional: clicks the stream has committed to Silver, per pipeline date, minute of the replay time and web '
    'server. Summed over a date = the stream''s deduplicated events of the date (<= exact total_events).';
COMMENT ON COLUMN live.clicks_per_minute.event_date IS 'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN live.clicks_per_minute.minute IS
    'Start of the minute of event_ts, the replay time at which the click reached the pipeline (UTC).';
COMMENT ON COLUMN live.clicks_per_minute.source_server IS 'Web server whose log the click came from (source_server).';
COMMENT ON COLUMN live.clicks_per_minute.clicks IS 'Clicks of that minute and server counted so far.';
COMMENT ON COLUMN live.clicks_per_minute.updated_at IS 'Commit time of the micro-batch that last changed the row.';

-- document_minutes -----------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS live.document_minutes (
    event_date   date        NOT NULL,
    minute       timestamptz NOT NULL,
    document_id  bigint      NOT NULL,
    title        text,
    clicks       bigint      NOT NULL CHECK (clicks > 0),
    updated_at   timestamptz NOT NULL,
    CONSTRAINT document_minutes_pk PRIMARY KEY (event_date, minute, document_id)
);
COMMENT ON TABLE live.document_minutes IS
    'Provisional: clicks per pipeline date, minute of the replay time and document; the base of top_documents_15m.';
COMMENT ON COLUMN live.document_minutes.event_date IS 'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN live.document_minutes.minute IS 'Start of the minute of event_ts (replay time, UTC).';
COMMENT ON COLUMN live.document_minutes.document_id IS 'TripClick DocumentId.';
COMMENT ON COLUMN live.document_minutes.title IS 'Greatest non-empty title logged for the document in that minute.';
COMMENT ON COLUMN live.document_minutes.clicks IS 'Clicks on the document in that minute counted so far.';
COMMENT ON COLUMN live.document_minutes.updated_at IS 'Commit time of the micro-batch that last changed the row.';

-- area_minutes ---------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS live.area_minutes (
    event_date     date             NOT NULL,
    minute         timestamptz      NOT NULL,
    clinical_area  text             NOT NULL,
    clicks         bigint           NOT NULL CHECK (clicks > 0),
    click_share    double precision NOT NULL CHECK (click_share >= 0),
    updated_at     timestamptz      NOT NULL,
    CONSTRAINT area_minutes_pk PRIMARY KEY (event_date, minute, clinical_area)
);
COMMENT ON TABLE live.area_minutes IS
    'Provisional: clicks per pipeline date, minute of the replay time and clinical area (the areas of '
    'gold.mart_clinical_areas: title case, (none) for clicks without one); the base of top_clinical_areas_15m.';
COMMENT ON COLUMN live.area_minutes.event_date IS 'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN live.area_minutes.minute IS 'Start of the minute of event_ts (replay time, UTC).';
COMMENT ON COLUMN live.area_minutes.clinical_area IS 'Clinical area as in gold.mart_clinical_areas.clinical_area.';
COMMENT ON COLUMN live.area_minutes.clicks IS 'Clicks on documents of the area in that minute (once per click).';
COMMENT ON COLUMN live.area_minutes.click_share IS 'Each click split equally among its areas; adds up to the clicks.';
COMMENT ON COLUMN live.area_minutes.updated_at IS 'Commit time of the micro-batch that last changed the row.';

-- applied_batches: what makes a replayed micro-batch count once ---------------------------------
CREATE TABLE IF NOT EXISTS live.applied_batches (
    query_id    text        NOT NULL,
    batch_id    bigint      NOT NULL CHECK (batch_id >= 0),
    applied_at  timestamptz NOT NULL,
    CONSTRAINT applied_batches_pk PRIMARY KEY (query_id)
);
COMMENT ON TABLE live.applied_batches IS
    'Last micro-batch of each live query (id kept in its Spark checkpoint) whose counts are committed; written in '
    'the same transaction as the counts, so a batch Spark replays after a restart is recognised and skipped.';
COMMENT ON COLUMN live.applied_batches.query_id IS 'Spark streaming query id (stable across restarts of one checkpoint).';
COMMENT ON COLUMN live.applied_batches.batch_id IS 'Highest micro-batch id applied.';
COMMENT ON COLUMN live.applied_batches.applied_at IS 'Commit time of that batch.';

-- The newest live date's clicks per minute (what the dashboard draws; Superset forbids sub-queries in charts) --
CREATE OR REPLACE VIEW live.clicks_per_minute_newest AS
SELECT event_date, minute, source_server, clicks, updated_at
  FROM live.clicks_per_minute
 WHERE event_date = (SELECT max(event_date) FROM live.clicks_per_minute);
COMMENT ON VIEW live.clicks_per_minute_newest IS
    'Provisional: the rows of live.clicks_per_minute of the newest pipeline date that has live rows.';
COMMENT ON COLUMN live.clicks_per_minute_newest.event_date IS 'The newest pipeline date with live rows.';
COMMENT ON COLUMN live.clicks_per_minute_newest.minute IS 'Start of the minute of event_ts (replay time, UTC).';
COMMENT ON COLUMN live.clicks_per_minute_newest.source_server IS 'Web server whose log the click came from.';
COMMENT ON COLUMN live.clicks_per_minute_newest.clicks IS 'Clicks of that minute and server counted so far.';
COMMENT ON COLUMN live.clicks_per_minute_newest.updated_at IS 'Commit time of the micro-batch that last changed the row.';

-- The two 15-minute views: the newest live date, the 15 minutes ending with its newest minute ----
CREATE OR REPLACE VIEW live.top_documents_15m AS
WITH latest AS (
    SELECT event_date, max(minute) AS last_minute FROM live.clicks_per_minute
     WHERE event_date = (SELECT max(event_date) FROM live.clicks_per_minute) GROUP BY event_date
)
SELECT d.event_date,
       l.last_minute - interval '14 minutes' AS window_start,
       l.last_minute + interval '1 minute' AS window_end,
       d.document_id,
       max(d.title) AS title,
       sum(d.clicks)::bigint AS clicks,
       row_number() OVER (ORDER BY sum(d.clicks) DESC, d.document_id)::integer AS rank
  FROM live.document_minutes d
  JOIN latest l ON d.event_date = l.event_date AND d.minute > l.last_minute - interval '15 minutes'
 GROUP BY d.event_date, l.last_minute, d.document_id;
COMMENT ON VIEW live.top_documents_15m IS
    'Provisional: documents by clicks in the last 15 minutes of the newest live date (the 15 one-minute buckets '
    'ending with its newest minute of replay time), rank 1 = most clicked, ties by document_id.';
COMMENT ON COLUMN live.top_documents_15m.event_date IS 'The newest pipeline date with live rows.';
COMMENT ON COLUMN live.top_documents_15m.window_start IS 'Start of the 15-minute window (replay time, UTC).';
COMMENT ON COLUMN live.top_documents_15m.window_end IS 'End of the window (exclusive): one minute after the newest minute.';
COMMENT ON COLUMN live.top_documents_15m.document_id IS 'TripClick DocumentId.';
COMMENT ON COLUMN live.top_documents_15m.title IS 'Greatest non-empty title seen in the window.';
COMMENT ON COLUMN live.top_documents_15m.clicks IS 'Clicks on the document in the window.';
COMMENT ON COLUMN live.top_documents_15m.rank IS 'Position by clicks in the window, ties broken by the lower document_id.';

CREATE OR REPLACE VIEW live.top_clinical_areas_15m AS
WITH latest AS (
    SELECT event_date, max(minute) AS last_minute FROM live.clicks_per_minute
     WHERE event_date = (SELECT max(event_date) FROM live.clicks_per_minute) GROUP BY event_date
)
SELECT a.event_date,
       l.last_minute - interval '14 minutes' AS window_start,
       l.last_minute + interval '1 minute' AS window_end,
       a.clinical_area,
       sum(a.clicks)::bigint AS clicks,
       sum(a.click_share) AS click_share,
       row_number() OVER (ORDER BY sum(a.clicks) DESC, a.clinical_area)::integer AS rank
  FROM live.area_minutes a
  JOIN latest l ON a.event_date = l.event_date AND a.minute > l.last_minute - interval '15 minutes'
 GROUP BY a.event_date, l.last_minute, a.clinical_area;
COMMENT ON VIEW live.top_clinical_areas_15m IS
    'Provisional: clinical areas by clicks in the last 15 minutes of the newest live date (as top_documents_15m).';
COMMENT ON COLUMN live.top_clinical_areas_15m.event_date IS 'The newest pipeline date with live rows.';
COMMENT ON COLUMN live.top_clinical_areas_15m.window_start IS 'Start of the 15-minute window (replay time, UTC).';
COMMENT ON COLUMN live.top_clinical_areas_15m.window_end IS 'End of the window (exclusive).';
COMMENT ON COLUMN live.top_clinical_areas_15m.clinical_area IS 'Clinical area as in gold.mart_clinical_areas.';
COMMENT ON COLUMN live.top_clinical_areas_15m.clicks IS 'Clicks on documents of the area in the window.';
COMMENT ON COLUMN live.top_clinical_areas_15m.click_share IS 'Clicks split equally among their areas, in the window.';
COMMENT ON COLUMN live.top_clinical_areas_15m.rank IS 'Position by clicks in the window, ties broken by the area name.';

-- Explicit grant as well as the default privileges: tables and views created before this ran stay readable.
GRANT SELECT ON ALL TABLES IN SCHEMA live TO :"reader";

RESET ROLE;
