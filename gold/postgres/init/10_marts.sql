-- The six Gold marts. Runs as the cluster superuser in the Gold database after 01_schema_and_grants.sql;
-- re-runnable. Tables are created as the loader role so it owns them (load_to_postgres replaces rows);
-- the reader gets SELECT through the default privileges of 01 and the explicit GRANT at the end.
-- Tables, columns in order, types, primary keys and COMMENT texts are those of gold/marts.toml, the definition
-- processing builds and loads: tests/gold/test_mart_definition.py compares this file with it, so change both.
\set ON_ERROR_STOP on

SET ROLE :"loader";

-- mart_daily_traffic ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS gold.mart_daily_traffic (
    event_date        date     NOT NULL,
    total_events      bigint   NOT NULL CHECK (total_events >= 0),
    unique_sessions   bigint   NOT NULL CHECK (unique_sessions >= 0),
    unique_documents  bigint   NOT NULL CHECK (unique_documents >= 0),
    peak_hour         smallint CHECK (peak_hour BETWEEN 0 AND 23),
    CONSTRAINT mart_daily_traffic_pk PRIMARY KEY (event_date)
);
COMMENT ON TABLE gold.mart_daily_traffic IS
    'One row per pipeline date: volume of clicks, sessions and documents, and the busiest hour.';
COMMENT ON COLUMN gold.mart_daily_traffic.event_date IS
    'Pipeline date of the events (YYYY-MM-DD in PIPELINE_TZ); primary key.';
COMMENT ON COLUMN gold.mart_daily_traffic.total_events IS
    'Deduplicated click events of the day.';
COMMENT ON COLUMN gold.mart_daily_traffic.unique_sessions IS
    'Distinct SessionId values that clicked that day.';
COMMENT ON COLUMN gold.mart_daily_traffic.unique_documents IS
    'Distinct DocumentId values clicked that day.';
COMMENT ON COLUMN gold.mart_daily_traffic.peak_hour IS
    'UTC hour (0-23) of the original TripClick click time (DateCreated) with the most clicks, lowest on a tie; '
    'the replay compresses event_ts into one window, so the original time carries the hourly pattern.';

-- mart_session_analysis ------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS gold.mart_session_analysis (
    event_date            date             NOT NULL,
    session_id            text             NOT NULL,
    click_count           integer          NOT NULL CHECK (click_count > 0),
    unique_docs           integer          NOT NULL CHECK (unique_docs > 0),
    first_click_ts        timestamptz      NOT NULL,
    last_click_ts         timestamptz      NOT NULL,
    session_duration_sec  double precision NOT NULL CHECK (session_duration_sec >= 0),
    CONSTRAINT mart_session_analysis_pk PRIMARY KEY (event_date, session_id),
    CONSTRAINT mart_session_analysis_order CHECK (last_click_ts >= first_click_ts)
);
COMMENT ON TABLE gold.mart_session_analysis IS
    'One row per search session and pipeline date: how much and how long (in real seconds, on the original '
    'TripClick click time DateCreated) the session clicked.';
COMMENT ON COLUMN gold.mart_session_analysis.event_date IS
    'Pipeline date of the clicks (PIPELINE_TZ); a session whose clicks fall on two pipeline dates has one row per date.';
COMMENT ON COLUMN gold.mart_session_analysis.session_id IS
    'TripClick SessionId.';
COMMENT ON COLUMN gold.mart_session_analysis.click_count IS
    'Deduplicated clicks of the session on that date.';
COMMENT ON COLUMN gold.mart_session_analysis.unique_docs IS
    'Distinct documents the session clicked on that date.';
COMMENT ON COLUMN gold.mart_session_analysis.first_click_ts IS
    'Original click time (DateCreated, UTC) of the first click of the session on that date; not the replay time event_ts.';
COMMENT ON COLUMN gold.mart_session_analysis.last_click_ts IS
    'Original click time (DateCreated, UTC) of the last click of the session on that date; not the replay time event_ts.';
COMMENT ON COLUMN gold.mart_session_analysis.session_duration_sec IS
    'last_click_ts - first_click_ts in real seconds (original clock, millisecond precision); 0 for a single click.';

-- mart_clinical_areas --------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS gold.mart_clinical_areas (
    event_date       date             NOT NULL,
    clinical_area    text             NOT NULL,
    click_count      bigint           NOT NULL CHECK (click_count >= 0),
    unique_sessions  bigint           NOT NULL CHECK (unique_sessions >= 0),
    click_share      double precision CHECK (click_share >= 0),
    CONSTRAINT mart_clinical_areas_pk PRIMARY KEY (event_date, clinical_area)
);
-- Upgrade of a database created before click_share existed (appended last, as in the CREATE above).
ALTER TABLE gold.mart_clinical_areas ADD COLUMN IF NOT EXISTS click_share double precision CHECK (click_share >= 0);
COMMENT ON TABLE gold.mart_clinical_areas IS
    'One row per clinical area and pipeline date, plus the bucket (none) for clicks without an area; a click on a '
    'document with several areas counts in click_count for each, and SUM(click_share) over a date = its clicks.';
COMMENT ON COLUMN gold.mart_clinical_areas.event_date IS
    'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN gold.mart_clinical_areas.clinical_area IS
    'Area of the comma-separated ClinicalAreas field, matched trimmed, whitespace-collapsed and case-insensitively, '
    'shown in title case (first letter and letters after a space, / or - upper-case, the rest lower-case); '
    '(none) = clicks whose ClinicalAreas is null, empty or only commas and blanks.';
COMMENT ON COLUMN gold.mart_clinical_areas.click_count IS
    'Clicks on documents tagged with this area that day (an area listed twice on one click counts once).';
COMMENT ON COLUMN gold.mart_clinical_areas.unique_sessions IS
    'Distinct sessions that clicked a document of this area that day (not additive over dates or areas).';
COMMENT ON COLUMN gold.mart_clinical_areas.click_share IS
    'Sum over the area''s clicks of 1 / (distinct areas of the click): each click split equally among its areas, '
    'so the areas (with (none)) add up to the day''s clicks. NULL only on rows loaded before this column existed.';

-- mart_popular_documents -----------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS gold.mart_popular_documents (
    event_date       date    NOT NULL,
    document_id      bigint  NOT NULL,
    title            text,
    view_count       bigint  NOT NULL CHECK (view_count > 0),
    unique_sessions  bigint  NOT NULL CHECK (unique_sessions > 0),
    rank             integer NOT NULL CHECK (rank >= 1),
    CONSTRAINT mart_popular_documents_pk PRIMARY KEY (event_date, document_id)
);
COMMENT ON TABLE gold.mart_popular_documents IS
    'Every document clicked on a pipeline date, ranked by views (rank 1 = most viewed).';
COMMENT ON COLUMN gold.mart_popular_documents.event_date IS
    'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN gold.mart_popular_documents.document_id IS
    'TripClick DocumentId.';
COMMENT ON COLUMN gold.mart_popular_documents.title IS
    'Greatest non-empty title logged for the document that day (NULL when no click carried one).';
COMMENT ON COLUMN gold.mart_popular_documents.view_count IS
    'Clicks on the document that day.';
COMMENT ON COLUMN gold.mart_popular_documents.unique_sessions IS
    'Distinct sessions that clicked the document that day (a sum over dates counts session-days, not sessions).';
COMMENT ON COLUMN gold.mart_popular_documents.rank IS
    'Position by view_count within the day, 1 = most viewed; ties broken by the lower document_id, so unique.';
-- Top-N per day without sorting the whole day.
CREATE INDEX IF NOT EXISTS mart_popular_documents_date_rank_idx
    ON gold.mart_popular_documents (event_date, rank);

-- mart_search_keywords -------------------------------------------------------------------------
-- TripClick's Keywords field holds the whole query string a user typed; the mart counts those queries.
CREATE TABLE IF NOT EXISTS gold.mart_search_keywords (
    event_date        date   NOT NULL,
    query             text   NOT NULL,
    sessions          bigint NOT NULL CHECK (sessions >= 0),
    clicks            bigint NOT NULL CHECK (clicks >= 0),
    unique_documents  bigint NOT NULL CHECK (unique_documents >= 0),
    CONSTRAINT mart_search_keywords_pk PRIMARY KEY (event_date, query)
);
-- Upgrade of a database created with the old column names (keyword, searches): rename in place, data kept
-- (the values meant the same; only the names were misleading). No-op once renamed.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'gold'
               AND table_name = 'mart_search_keywords' AND column_name = 'keyword') THEN
        ALTER TABLE gold.mart_search_keywords RENAME COLUMN keyword TO query;
    END IF;
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'gold'
               AND table_name = 'mart_search_keywords' AND column_name = 'searches') THEN
        ALTER TABLE gold.mart_search_keywords RENAME COLUMN searches TO sessions;
    END IF;
END
$$;
COMMENT ON TABLE gold.mart_search_keywords IS
    'One row per search QUERY (the whole Keywords string of a click, normalised) and pipeline date; '
    'individual words are in mart_search_terms.';
COMMENT ON COLUMN gold.mart_search_keywords.event_date IS
    'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN gold.mart_search_keywords.query IS
    'The Keywords field of a click with whitespace runs collapsed to one space, trimmed, lower-cased; '
    'clicks with an empty or null query are not counted.';
COMMENT ON COLUMN gold.mart_search_keywords.sessions IS
    'Distinct sessions with a click carrying this query that day (a sum over dates counts session-days).';
COMMENT ON COLUMN gold.mart_search_keywords.clicks IS
    'Clicks carrying this query that day.';
COMMENT ON COLUMN gold.mart_search_keywords.unique_documents IS
    'Distinct documents clicked with this query that day.';

-- mart_search_terms ----------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS gold.mart_search_terms (
    event_date        date   NOT NULL,
    term              text   NOT NULL,
    sessions          bigint NOT NULL CHECK (sessions > 0),
    clicks            bigint NOT NULL CHECK (clicks > 0),
    queries           bigint NOT NULL CHECK (queries > 0),
    unique_documents  bigint NOT NULL CHECK (unique_documents > 0),
    CONSTRAINT mart_search_terms_pk PRIMARY KEY (event_date, term)
);
COMMENT ON TABLE gold.mart_search_terms IS
    'One row per search term (word of the normalised queries of mart_search_keywords) and pipeline date.';
COMMENT ON COLUMN gold.mart_search_terms.event_date IS
    'Pipeline date of the clicks (PIPELINE_TZ).';
COMMENT ON COLUMN gold.mart_search_terms.term IS
    'A space-separated piece of the normalised query, with characters other than Unicode letters and digits '
    'stripped from both ends; empty pieces dropped; a term repeated in one query counts once. No stop words removed.';
COMMENT ON COLUMN gold.mart_search_terms.sessions IS
    'Distinct sessions with a click whose query contains the term that day (a sum over dates counts session-days).';
COMMENT ON COLUMN gold.mart_search_terms.clicks IS
    'Clicks whose query contains the term that day.';
COMMENT ON COLUMN gold.mart_search_terms.queries IS
    'Distinct normalised queries containing the term that day.';
COMMENT ON COLUMN gold.mart_search_terms.unique_documents IS
    'Distinct documents clicked with a query containing the term that day.';

-- Date-range scans for every chart are served by the primary keys, which all lead with event_date.
-- Explicit grant as well as the default privileges: tables created before 01 ran stay readable too.
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO :"reader";

RESET ROLE;
