"""Which pipeline dates a command works on, and the one summary line every date-range command ends with.

Pure and shared by the processing jobs, the range producer (ingestion.produce_range) and the backfill
orchestration, so all of them accept the same date options and the orchestration reads their outcome
from one format:

    --date D [--date D2 ...]   one or more dates (one --date alone = the daily single-date behaviour)
    --dates D1,D2,...          a comma list (may be empty: nothing to do)
    --start S --end E          every date from S to E, both included

    summary dates=3 ok=2 failed=1 ok_dates=2026-01-01,2026-01-03 failed_dates=2026-01-02 seconds=12.3
"""
from __future__ import annotations

import argparse
import re
from datetime import date, timedelta

MAX_DATES = 366  # a longer range is almost certainly a typo in START/END
# A pipeline date as every layer spells it (YYYY-MM-DD), unanchored so it composes into folder and file names;
# zero-padded fields within their ranges (what Spark's fixed patterns accept): only a day 29-31 then needs a
# calendar check. Python, Java (Spark) and JSON schema (Airflow's Params) regexes all read it alike.
ISO_DATE = r"(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_SUMMARY = re.compile(r"\bsummary dates=(\d+) ok=(\d+) failed=(\d+) ok_dates=(\S*) failed_dates=(\S*)")


def date_list(text: str) -> list[date]:
    """`D1,D2,...` -> dates; an empty string is an empty list."""
    try:
        return [date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma list of YYYY-MM-DD dates: {text!r} ({exc})") from None


def date_range(start: date, end: date) -> list[date]:
    """Every date from start to end, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    days = (end - start).days + 1
    if days > MAX_DATES:
        raise ValueError(f"{start}..{end} is {days} dates; at most {MAX_DATES} at once")
    return [start + timedelta(days=i) for i in range(days)]


def add_date_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", action="append", type=date.fromisoformat, default=[], metavar="YYYY-MM-DD",
                        help="pipeline date; repeat it for several dates")
    parser.add_argument("--dates", type=date_list, metavar="D1,D2,...",
                        help="comma list of pipeline dates (may be empty: nothing to do)")
    parser.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="first date of a range (with --end; both included)")
    parser.add_argument("--end", type=date.fromisoformat, metavar="YYYY-MM-DD", help="last date of a range")
    parser.add_argument("--keep-going", action="store_true",
                        help="several dates: exit 0 although some dates failed (they are named in the summary "
                             "line); the backfill DAG uses it so the next step still runs for the good dates")


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Sets args.dates (sorted, unique) and args.range_mode (anything but exactly one --date); exits 2 on
    a missing or half-given selection."""
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    if not args.date and args.dates is None and args.start is None:
        parser.error("give --date, --dates or --start/--end")
    days = set(args.date) | set(args.dates or [])
    if args.start is not None:
        try:
            days |= set(date_range(args.start, args.end))
        except ValueError as exc:
            parser.error(str(exc))
    args.dates = sorted(days)
    args.range_mode = not (len(args.date) == 1 and args.dates == args.date)
    if not args.range_mode:
        args.date = args.dates[0]
    return args


def summary_line(days: list[date], failed: dict[date, str]) -> str:
    ok = [d for d in days if d not in failed]
    bad = [d for d in days if d in failed]
    return (f"summary dates={len(days)} ok={len(ok)} failed={len(bad)} "
            f"ok_dates={','.join(d.isoformat() for d in ok)} failed_dates={','.join(d.isoformat() for d in bad)}")


def parse_summary(text: str | None) -> tuple[list[date], list[date]] | None:
    """(ok dates, failed dates) of the last summary line in `text`; None when there is none."""
    found = _SUMMARY.findall(text or "")
    if not found:
        return None
    *_, ok, bad = found[-1]
    return date_list(ok), date_list(bad)
