"""Data quality suites of one pipeline date (Great Expectations 1.x on the Spark DataFrames of the lake).

The gate (processing.spark.jobs.reconcile --stage lake, DAG task check_lake) runs `validate_day` after the
exact Silver and Gold are published and before load_to_postgres. Every expectation is built by a small
function below, with the failure it guards against written beside it, and carries a severity:
  fail  the day must not reach analysts: the gate exits 1 and the load never runs
  warn  the day loads; the warning is recorded (gold.dq_results, Data Docs, task log)
How to add one: see "Data quality gate" in processing/README.md.
"""
from __future__ import annotations

import html
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gold import marts

FAIL, WARN = "fail", "warn"
SEVERITIES = (FAIL, WARN)
TRAILING_DAYS = 7

# Clinical areas as mart_clinical_areas spells them (title case of the normalised entry, see
# processing.transforms.area_display). A value outside this list is a WARN: a new area is plausible, but
# a sudden batch of them usually means the producer's field mapping changed. Extend the tuple when a new
# area is confirmed.
KNOWN_CLINICAL_AREAS = (
    "(none)", "Anaesthesia", "Cardiology", "Dentistry", "Dermatology", "Diabetes", "Emergency Medicine",
    "Endocrinology", "Ent", "Gastroenterology", "Genetics", "Geriatrics", "Haematology", "Infectious Diseases",
    "Intensive Care", "Immunology", "Nephrology", "Neurology", "Nursing", "Obstetrics And Gynaecology",
    "Occupational Health", "Oncology", "Ophthalmology", "Orthopaedics", "Paediatrics", "Palliative Care",
    "Pharmacology", "Physiotherapy", "Primary Care", "Psychiatry", "Public Health", "Respiratory",
    "Rheumatology", "Surgery", "Urology",
    # Spellings the generator (ingestion/generate.py) uses beside the British ones above.
    "Infectious Disease", "Ob-Gyn", "Pediatrics",
)

SILVER_TYPES = {  # column -> Spark type name as GE reports it; a change breaks every mart downstream
    "SessionId": "StringType", "DocumentId": "LongType", "event_ts": "TimestampType",
    "original_ts": "TimestampType", "dedup_key": "StringType", "source_server": "StringType",
}
# mart -> key columns of its rows (never null; the primary key after event_date, which the folder carries)
MART_KEYS = {m.name: m.key[1:] for m in marts.MARTS}


@dataclass(frozen=True)
class Spec:
    """One expectation of a suite: a stable name, its severity, the failure it guards against."""
    name: str
    severity: str
    guards: str
    expectation: object  # a great_expectations Expectation


@dataclass(frozen=True)
class Result:
    suite: str
    expectation: str
    severity: str
    success: bool
    observed: str
    guards: str = ""

    @property
    def failed(self) -> bool:
        return self.severity == FAIL and not self.success


def _gx():
    import os

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the pipeline
    import great_expectations as gx  # imported lazily: ~2 s, only the gate pays it

    return gx


def preload() -> threading.Thread:
    """Import GE in a background thread: its import takes seconds of pure Python, which the JVM's start and
    the gate's count checks (the driver waits on Spark through py4j, without the GIL) leave free to overlap."""
    thread = threading.Thread(target=_gx, name="gx-import", daemon=True)
    thread.start()
    return thread


def spec(name: str, severity: str, guards: str, kind: str, **kwargs) -> Spec:
    """An expectation of class gx.expectations.<kind>, tagged with our name and severity."""
    if severity not in SEVERITIES:
        raise ValueError(f"{name}: severity {severity!r} is not one of {SEVERITIES}")
    gx = _gx()
    level = gx.expectations.metadata_types.FailureSeverity
    expectation = getattr(gx.expectations, kind)(
        meta={"name": name, "severity": severity, "guards": guards},
        severity=level.CRITICAL if severity == FAIL else level.WARNING, **kwargs)
    return Spec(name, severity, guards, expectation)


# ---- expectation builders: each returns the Specs of one concern ------------------------------------------

def schema_specs(columns: dict[str, str], exact: tuple[str, ...] | None = None) -> list[Spec]:
    """Columns exist with their types (guards: a contract or transform change silently renaming or retyping
    a column, which would load NULLs or fail the COPY half-way)."""
    out = []
    if exact is not None:
        out.append(spec("columns_match", FAIL, "a column added, lost or renamed by a transform change",
                        "ExpectTableColumnsToMatchSet", column_set=list(exact), exact_match=True))
    out += [spec(f"type:{column}", FAIL, f"{column} retyped (e.g. DocumentId read as string)",
                 "ExpectColumnValuesToBeOfType", column=column, type_=kind) for column, kind in columns.items()]
    return out


def not_null_specs(columns: tuple[str, ...]) -> list[Spec]:
    """Keys never null (guards: a parser change producing NULL keys that collapse into one group)."""
    return [spec(f"not_null:{c}", FAIL, f"NULL {c}: rows that no dashboard filter can reach",
                 "ExpectColumnValuesToNotBeNull", column=c) for c in columns]


def unique_specs(columns: tuple[str, ...], label: str = "unique") -> list[Spec]:
    """(guards: a replayed file or a duplicated partition counted twice)"""
    return [spec(f"{label}:{c}", FAIL, f"duplicate {c}: a replay or duplicated partition counted twice",
                 "ExpectColumnValuesToBeUnique", column=c) for c in columns]


def event_date_specs(day: date) -> list[Spec]:
    """Every row's pipeline date (event_ts in PIPELINE_TZ, column `_pipeline_date` added by silver_frame)
    equals the run's date (guards: a producer replaying another date's file into this day)."""
    return [spec("event_date_is_run_date", FAIL, "a producer replayed another date's file into this day",
                 "ExpectColumnValuesToBeInSet", column="_pipeline_date", value_set=[day.isoformat()])]


def load_window(manifests: list[dict], lateness: timedelta) -> tuple[datetime, datetime] | None:
    """[first started_at - lateness, last finished_at + lateness] of the date's producer manifests (UTC);
    None when no manifest of the date carries both times."""
    runs = [(_utc(m["started_at"]), _utc(m["finished_at"])) for m in manifests
            if m.get("started_at") and m.get("finished_at")]
    if not runs:
        return None
    return min(s for s, _ in runs) - lateness, max(f for _, f in runs) + lateness


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def load_time_specs(window: tuple[datetime, datetime] | None) -> list[Spec]:
    """Load time within the day's window: every row's kafka_timestamp (when Kafka accepted it, kept through
    Bronze) lies inside the date's producer runs, widened by QUALITY_LOAD_LATENESS_MINUTES (guards: rows of
    the date that entered Kafka outside the day's runs, e.g. an old day's file replayed into a later run and
    carried by the stream into that date's rebuilt Silver, or records of the date written by anything other
    than the day's producers). The counts cannot see it: such rows pass validation and dedup like any other.
    WARN, not fail: a deliberate replay of the day (a second `make demo`, a producer retry after a rerun)
    is allowed, and the exact Silver keeps each event's first copy, loaded by an earlier run.
    Without a manifest of the date the window is unknown: recorded, not compared (the manifest checks of
    the same gate fail that day anyway)."""
    if window is None:
        return [spec("load_time_within_window", WARN, "no producer manifest of the date: load window unknown",
                     "ExpectColumnToExist", column="kafka_timestamp")]
    low, high = window
    return [spec("load_time_within_window", WARN,
                 f"rows loaded outside the day's producer runs ({low:%Y-%m-%d %H:%M}..{high:%Y-%m-%d %H:%M} UTC)",
                 "ExpectColumnValuesToBeBetween", column="kafka_timestamp", min_value=low, max_value=high)]


def document_id_specs(column: str = "DocumentId") -> list[Spec]:
    """(guards: an id overflow or a default 0/-1 written by a broken upstream export)"""
    return [spec(f"positive:{column}", FAIL, "DocumentId 0/negative: overflow or a placeholder id upstream",
                 "ExpectColumnValuesToBeBetween", column=column, min_value=1)]


def vocabulary_specs(column: str = "clinical_area", known: tuple[str, ...] = KNOWN_CLINICAL_AREAS) -> list[Spec]:
    """New values WARN (guards: a changed field mapping or vocabulary upstream; a new area is plausible)."""
    return [spec(f"known_vocabulary:{column}", WARN, "clinical areas outside the known vocabulary",
                 "ExpectColumnValuesToBeInSet", column=column, value_set=list(known))]


def volume_specs(history: list[int], band: float) -> list[Spec]:
    """Silver rows within [mean*(1-band), mean*(1+band)] of the trailing processed days (guards: a truncated
    day, a producer that died early, a doubled replay). Fail only with TRAILING_DAYS days of history;
    with fewer it warns (first days of a pipeline), with none it records that there is nothing to compare."""
    if not history:
        return [spec("volume_in_trailing_band", WARN, "no trailing processed day yet: volume not compared",
                     "ExpectTableRowCountToBeBetween", min_value=0)]
    mean = sum(history) / len(history)
    severity = FAIL if len(history) >= TRAILING_DAYS else WARN
    return [spec("volume_in_trailing_band", severity,
                 f"a truncated or doubled day (mean of {len(history)} trailing days {mean:.0f}, band {band:g})",
                 "ExpectTableRowCountToBeBetween", min_value=int(mean * (1 - band)),
                 max_value=int(mean * (1 + band)) + 1)]


def equals_specs(name: str, column: str, expected: float, guards: str, tolerance: float = 0.0) -> list[Spec]:
    """One column's value(s) equal a number computed elsewhere (e.g. Gold total = Silver rows)."""
    return [spec(name, FAIL, guards, "ExpectColumnValuesToBeBetween", column=column,
                 min_value=expected - tolerance, max_value=expected + tolerance)]


def sum_specs(name: str, column: str, expected: float, guards: str, tolerance: float = 1e-6) -> list[Spec]:
    slack = tolerance * max(1.0, expected)  # click_share is a sum of fractions: exact up to rounding
    return [spec(name, FAIL, guards, "ExpectColumnSumToBeBetween", column=column,
                 min_value=expected - slack, max_value=expected + slack)]


def rank_specs(rows: int, column: str = "rank") -> list[Spec]:
    """Ranks are exactly 1..n: unique, min 1, max n (guards: a window change leaving gaps or ties)."""
    guards = "ranks with gaps or ties: 'top N' charts would show fewer or more than N"
    return [spec(f"unique:{column}", FAIL, guards, "ExpectColumnValuesToBeUnique", column=column),
            spec(f"min:{column}", FAIL, guards, "ExpectColumnMinToBeBetween", column=column,
                 min_value=1 if rows else None, max_value=1 if rows else None),
            spec(f"max:{column}", FAIL, guards, "ExpectColumnMaxToBeBetween", column=column,
                 min_value=rows if rows else None, max_value=rows if rows else None)]


def le_specs(small: str, large: str) -> list[Spec]:
    """small <= large on every row (guards: distinct counts swapped with totals, e.g. sessions > clicks)."""
    return [spec(f"{small}_le_{large}", FAIL, f"{small} > {large}: a distinct count above its total",
                 "ExpectColumnPairValuesAToBeGreaterThanB", column_A=large, column_B=small, or_equal=True)]


# ---- validation -----------------------------------------------------------------------------------------

def observed(result) -> str:
    """A short, readable observed value of one GE ExpectationValidationResult."""
    if result.exception_info and result.exception_info.get("raised_exception"):
        return "error: " + str(result.exception_info.get("exception_message"))[:200]
    body = result.result or {}
    if "observed_value" in body:
        return str(body["observed_value"])[:200]
    if "unexpected_count" in body:
        sample = body.get("partial_unexpected_list") or []
        return f"{body['unexpected_count']} unexpected of {body.get('element_count')}" + (
            f", e.g. {sample[:3]}" if sample else "")
    return json.dumps(body, default=str)[:200]


# GE's default (SUMMARY) adds, per column expectation, Spark jobs for a sample of unexpected values and their
# row indices, even when nothing is unexpected: dozens of jobs per day whatever its size. BASIC without a
# sample keeps what success and the observed value need (aggregates of one frame GE bundles into one select);
# only the expectations that did not pass are run again with a sample, so a clean day never pays for it.
CHEAP_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
DETAIL_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 3}


def new_context():
    """One ephemeral GE context for all suites of a run (each costs ~0.3 s of set-up)."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def batch_of(context, suite: str, frame):
    """A GE batch of a Spark DataFrame (Spark engine) or of a pandas DataFrame (pandas engine)."""
    if isinstance(frame, DataFrame):
        # persist=False: GE would persist every frame and never release it; re-reading Silver's few checked
        # columns from Parquet was measured faster than caching the partition.
        source = context.data_sources.add_spark(name=f"lake_{suite}_{uuid.uuid4().hex[:8]}", persist=False)
    else:
        source = context.data_sources.add_pandas(name=f"lake_{suite}_{uuid.uuid4().hex[:8]}")
    asset = source.add_dataframe_asset(name=suite)
    return asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})


def validate(frame, suite: str, specs: list[Spec], context=None) -> list[Result]:
    """Run one suite of expectations on a Spark or pandas DataFrame; failures are re-run once for a sample."""
    import copy

    gx = _gx()
    batch = batch_of(context or new_context(), suite, frame)
    items = {i.expectation_config.meta["name"]: i for i in batch.validate(
        gx.ExpectationSuite(name=suite, expectations=[s.expectation for s in specs]), result_format=CHEAP_FORMAT
    ).results}
    again = [copy.copy(s.expectation) for s in specs if not items[s.name].success]
    if again:
        detail = batch.validate(gx.ExpectationSuite(name=f"{suite}_detail", expectations=again),
                                result_format=DETAIL_FORMAT)
        items.update({i.expectation_config.meta["name"]: i for i in detail.results})
    return [Result(suite, s.name, s.severity, bool(items[s.name].success), observed(items[s.name]), s.guards)
            for s in specs]


def silver_frame(silver: DataFrame, pipeline_tz: str) -> DataFrame:
    """Silver with `_pipeline_date`: the date of event_ts in PIPELINE_TZ (the folder carries event_date)."""
    return silver.withColumn("_pipeline_date", F.date_format(F.from_utc_timestamp("event_ts", pipeline_tz),
                                                             "yyyy-MM-dd"))


# The only Silver columns the row-level expectations read. Parquet then reads these columns alone, and GE's
# few passes over them need no cache (measured: faster than caching the whole partition once). A new Silver
# expectation on another column adds it here, else it reports "column not found" as its observed value.
SILVER_CHECKED = ("SessionId", "DocumentId", "event_ts", "dedup_key", "kafka_timestamp", "_pipeline_date")


def silver_schema_specs(columns: tuple[str, ...]) -> list[Spec]:
    """Schema expectations: answered from the DataFrame's schema, no Spark job."""
    return schema_specs(SILVER_TYPES, exact=columns)


def silver_data_specs(day: date, history: list[int], band: float,
                      window: tuple[datetime, datetime] | None = None) -> list[Spec]:
    """Row-level expectations, on SILVER_CHECKED columns."""
    return (not_null_specs(("SessionId", "DocumentId", "event_ts", "dedup_key")) + unique_specs(("dedup_key",))
            + event_date_specs(day) + document_id_specs() + load_time_specs(window) + volume_specs(history, band))


def mart_specs(mart: str, silver_rows: int, mart_rows: int) -> list[Spec]:
    """The suite of one Gold mart given the Silver row count of the same date."""
    out = not_null_specs(MART_KEYS[mart]) + unique_specs(MART_KEYS[mart])
    guards_total = "Gold no longer adds up to Silver (a lost or duplicated input in the mart job)"
    if mart == "mart_daily_traffic":
        out += [spec("one_row", FAIL, "a day with no or several traffic rows", "ExpectTableRowCountToEqual",
                     value=1)]
        out += equals_specs("total_events_eq_silver", "total_events", silver_rows, guards_total)
        out += le_specs("unique_sessions", "total_events") + le_specs("unique_documents", "total_events")
    elif mart == "mart_session_analysis":
        out += sum_specs("click_count_sum_eq_silver", "click_count", silver_rows, guards_total)
        out += le_specs("unique_docs", "click_count")
        out += [spec("duration_non_negative", FAIL, "last click before first click", "ExpectColumnValuesToBeBetween",
                     column="session_duration_sec", min_value=0)]
    elif mart == "mart_clinical_areas":
        out += sum_specs("click_share_sum_eq_silver", "click_share", silver_rows,
                         "shares no longer split each click once among its areas")
        out += le_specs("unique_sessions", "click_count") + vocabulary_specs()
    elif mart == "mart_popular_documents":
        out += sum_specs("view_count_sum_eq_silver", "view_count", silver_rows, guards_total)
        out += rank_specs(mart_rows) + le_specs("unique_sessions", "view_count") + document_id_specs("document_id")
    elif mart in ("mart_search_keywords", "mart_search_terms"):
        out += le_specs("sessions", "clicks")
    return out


def trailing_volumes(read_rows, day: date) -> list[int]:
    """Silver rows of the TRAILING_DAYS dates before `day` that were processed (read_rows(d) -> int|None)."""
    counts = [read_rows(day - timedelta(days=i)) for i in range(1, TRAILING_DAYS + 1)]
    return [c for c in counts if c is not None]


def render_html(day: date, results: list[Result], run_at: datetime) -> str:
    """A static, self-contained Data Docs page of one run."""
    failed = sum(r.failed for r in results)
    warned = sum(r.severity == WARN and not r.success for r in results)
    rows = "\n".join(
        f"<tr class='{'ok' if r.success else r.severity}'><td>{html.escape(r.suite)}</td>"
        f"<td>{html.escape(r.expectation)}</td><td>{r.severity}</td><td>{'passed' if r.success else 'FAILED'}</td>"
        f"<td>{html.escape(r.observed)}</td><td>{html.escape(r.guards)}</td></tr>" for r in results)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Data quality {day}</title><style>
body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}
tr.fail td{{background:#f8d0d0}} tr.warn td{{background:#fbefc4}}</style></head><body>
<h1>Data quality gate, event_date={day}</h1>
<p>run at {run_at.isoformat()} &middot; {len(results)} expectations &middot; {failed} failed (fail) &middot;
{warned} warnings &middot; verdict: <b>{'STOP: the load does not run' if failed else 'PASS: the day loads'}</b></p>
<table><tr><th>suite</th><th>expectation</th><th>severity</th><th>result</th><th>observed</th>
<th>guards against</th></tr>
{rows}
</table></body></html>
"""


def docs_path(lake_root: str, day: date) -> str:
    return f"{lake_root.rstrip('/')}/quality/docs/event_date={day.isoformat()}/index.html"


def now() -> datetime:
    return datetime.now(timezone.utc)


# ---- the gate: read the published partitions, validate, record --------------------------------------------

def volume_band(environ: dict[str, str] | None = None) -> float:
    from infrastructure.settings import ConfigError, resolve

    raw = resolve(environ)["QUALITY_VOLUME_BAND"]
    try:
        band = float(raw)
    except ValueError:
        raise ConfigError(f"QUALITY_VOLUME_BAND={raw!r} is not a number") from None
    if not 0 < band:
        raise ConfigError(f"QUALITY_VOLUME_BAND must be > 0, got {band}")
    return band


def load_lateness_minutes(environ: dict[str, str] | None = None) -> int:
    from infrastructure.settings import ConfigError, resolve

    raw = resolve(environ)["QUALITY_LOAD_LATENESS_MINUTES"]
    if not raw.isdigit():
        raise ConfigError(f"QUALITY_LOAD_LATENESS_MINUTES must be a whole number of minutes >= 0, got {raw!r}")
    return int(raw)


def published_rows(spark, path: str) -> int | None:
    """Rows of a published partition from its completion marker (no Spark job); None if never published."""
    from processing import lake_io

    text = lake_io.read_text(spark, f"{path}/{lake_io.MARKER}")
    if text is None:
        return None
    rows = json.loads(text).get("rows")
    return rows if isinstance(rows, int) else None


# A mart holds one row per session/document/term of a day (~30k rows for a 160k-event day). On Spark, GE
# needs one job per expectation that is not a plain aggregate (uniqueness is a window, pair comparisons a
# filtered count): ~12 jobs per mart whatever its size. Collected once into pandas, the whole suite costs one
# Spark job. Above this many rows a mart stays on Spark (driver memory), cached because it is read again.
PANDAS_MAX_ROWS = 1_000_000


def to_pandas(frame: DataFrame):
    """One Spark job, through Arrow: without it pandas 2 refuses Spark's timestamps (unit-less datetime64).
    The setting is restored because the session may be shared (the tests run every job in one process)."""
    conf, key = frame.sparkSession.conf, "spark.sql.execution.arrow.pyspark.enabled"
    before = conf.get(key, "false")
    conf.set(key, "true")
    try:
        return frame.toPandas()
    finally:
        conf.set(key, before)


def mart_frame(frame: DataFrame, rows: int | None):
    """(the mart as GE validates it, its row count): pandas when small, else the cached Spark DataFrame."""
    if rows is not None and rows <= PANDAS_MAX_ROWS:
        table = to_pandas(frame)
        return table, len(table)
    frame = frame.cache()
    return frame, frame.count()


def run_suites(spark, settings, day: date, band: float, manifests: list[dict] | None = None) -> list[Result]:
    """Every suite of one date on the published Silver partition and Gold marts (`manifests`: the date's
    producer manifests, for the load window)."""
    from processing import lake, lake_io

    root = settings.lake_root
    silver = lake_io.read_partition(spark, lake.partition(root, "silver", day))
    if silver is None:
        return [Result("silver", "partition_published", FAIL, False, "no published Silver partition",
                       "etl_to_gold did not run or did not publish")]
    context = new_context()
    results, silver_rows = silver_results(spark, settings, day, silver, band, manifests or [], context)
    for mart in marts.NAMES:
        frame = lake_io.read_partition(spark, lake.gold_partition(root, mart, day))
        if frame is None:
            results.append(Result(mart, "partition_published", FAIL, False, "no published partition",
                                  "a mart missing from the day's Gold"))
            continue
        frame, rows = mart_frame(frame, published_rows(spark, lake.gold_partition(root, mart, day)))
        results += validate(frame, mart, mart_specs(mart, silver_rows, rows), context)
        if isinstance(frame, DataFrame):
            frame.unpersist()
    return results


def silver_results(spark, settings, day, silver, band, manifests, context) -> tuple[list[Result], int]:
    """(the Silver suite's results, Silver rows as GE counted them for the volume expectation)."""
    from processing import lake, transforms

    full = silver_frame(silver, settings.pipeline_tz)
    history = trailing_volumes(lambda d: published_rows(spark, lake.partition(settings.lake_root, "silver", d)),
                               day)
    window = load_window(manifests, timedelta(minutes=load_lateness_minutes()))
    expected = tuple(c for c in transforms.SILVER_COLUMNS if c != "event_date") + ("_pipeline_date",)
    results = validate(full, "silver", silver_schema_specs(expected), context)
    results += validate(full.select(*SILVER_CHECKED), "silver", silver_data_specs(day, history, band, window),
                        context)
    volume = next(r for r in results if r.expectation == "volume_in_trailing_band")
    # table.row_count is that expectation's observed value: no extra Spark job for the Gold totals.
    return results, int(volume.observed) if volume.observed.isdigit() else full.count()


def record(settings, day: date, results: list[Result], run_at: datetime) -> None:
    """Replace the date's rows of gold.dq_results in one transaction."""
    from gold.database import connect_loader

    conn = connect_loader(settings, "reconcile:quality")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM {marts.SCHEMA}.dq_results WHERE event_date = %s", (day,))
            cur.executemany(
                f"INSERT INTO {marts.SCHEMA}.dq_results (event_date, suite, expectation, severity, success, "
                "observed_value, run_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(day, r.suite, r.expectation, r.severity, r.success, r.observed, run_at) for r in results])
    finally:
        conn.close()


def write_docs(spark, lake_root: str, day: date, results: list[Result], run_at: datetime) -> str:
    """The run's Data Docs page in the lake (local folder or s3a, through the same Hadoop FS as the data)."""
    from processing import lake_io

    path = docs_path(lake_root, day)
    lake_io.write_text(spark, path, render_html(day, results, run_at))
    return path
