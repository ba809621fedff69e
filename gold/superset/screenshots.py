"""Screenshots of the Superset dashboards with headless Chromium, for the docs and the Superset test.

    .venv/bin/python -m gold.superset.screenshots --dashboard main --out gold/dashboard-month.png \\
        --time-range "2026-01-01 : 2026-02-02"
    .venv/bin/python -m gold.superset.screenshots --dashboard live --out gold/dashboard-live.png --wait-rows 600
    .venv/bin/python -m gold.superset.screenshots --dashboard health --out gold/dashboard-health.png

(`make screenshots [DASHBOARD=main|live|health] [OUT=...] [RANGE=...] [WAIT_ROWS=...]`.) Against the Superset of
`make superset` (http://127.0.0.1:SUPERSET_PORT, the admin of the settings). Chromium logs in, opens the
dashboard (main and health with their Date range filter set to the range: `start : end`, end excluded), waits
until every chart has drawn (or says "No results") and nothing is loading, grows the window to the whole
page, saves a PNG and reports per chart: title, drawn, empty, error text. Exit 1 when Superset is not
reachable, a chart shows an error or does not draw in time, or the live charts have no rows after
--wait-rows seconds (live rows exist only while a day is replayed, e.g. during `make demo`).
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from gold.superset.api import SupersetClient, SupersetError
from gold.superset.provision import DASHBOARD_SLUG, HEALTH_DASHBOARD_SLUG, LIVE_DASHBOARD_SLUG, base_url
from infrastructure.settings import REPO_ROOT, load

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DASHBOARDS = {"main": DASHBOARD_SLUG, "live": LIVE_DASHBOARD_SLUG, "health": HEALTH_DASHBOARD_SLUG}
DATE_FILTERED = ("main", "health")  # the dashboards with the native Date range filter (NATIVE_FILTER-date-range)
ERROR_SELECTOR = '[role="alert"], .alert-danger, .ant-alert-error'
DEFAULT_WIDTH = 1600
DEFAULT_HEIGHT = 2500  # the whole main dashboard at 1600 px; taller pages grow the window
HEIGHTS = {"main": DEFAULT_HEIGHT, "live": 1300, "health": 1400}  # start heights: no blank space under the charts
RENDER_TIMEOUT_SEC = 120
SETTLE_SEC = 2  # chart animations end before the screenshot

# Per chart on the page: its title, whether it drew something, and any error text.
CHART_STATES_JS = """
    return [...document.querySelectorAll('.dashboard-component-chart-holder .chart-slice')].map(el => ({
        title: el.innerText.split('\\n')[0],
        loading: !!el.querySelector('.loading'),
        drawn: !!el.querySelector('svg, canvas, table tbody tr, .header-line'),
        empty: /No results were returned|No data/.test(el.innerText),
        error: [...el.querySelectorAll('[role="alert"], .alert-danger, .ant-alert-error')]
                 .map(e => e.innerText).join(' | '),
    }));"""


class ScreenshotError(RuntimeError):
    """The screenshot could not be taken as asked; the message says why."""


@dataclass
class Shot:
    """What the browser saw when the screenshot was saved."""
    path: Path
    states: list[dict]  # chart_states() at the end
    body: str  # the page's visible text
    errors: list[str]  # visible error elements anywhere on the page
    seconds: float = 0.0  # from opening the dashboard to the saved PNG
    notes: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[screenshots] {message}", flush=True)


def chromium(width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT):
    """Headless Chromium through chromedriver (Debian's packages), fresh profile, flags that work as root."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise ScreenshotError("Chromium missing: run `bash infrastructure/local/setup.sh browser`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="tripclick-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},{height}",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    quit_driver = driver.quit

    def quit_and_clean() -> None:  # the fresh profile goes with the browser
        try:
            quit_driver()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


def login(driver, base: str, user: str, password: str, timeout: float = 30) -> None:
    """Log in through Superset's login form (the session cookie then opens every dashboard)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/login/")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    try:
        WebDriverWait(driver, timeout).until(lambda d: "/login" not in d.current_url)
    except TimeoutException:
        raise ScreenshotError(f"login as {user!r} at {base} failed (still on the login page)") from None


def chart_states(driver) -> list[dict]:
    return driver.execute_script(CHART_STATES_JS)


def visible_errors(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ERROR_SELECTOR) if e.is_displayed()]


def dashboard_url(base: str, slug: str, time_range: str | None = None) -> str:
    """The dashboard's URL; with time_range, its native Date range filter set to it (`start : end`)."""
    url = f"{base}/superset/dashboard/{slug}/"
    if time_range:
        url += (f"?native_filters=(NATIVE_FILTER-date-range:(id:NATIVE_FILTER-date-range,"
                f"extraFormData:(time_range:'{time_range}'),filterState:(value:'{time_range}'),ownState:()))")
    return url


def wait_for_charts(driver, expected_charts: int, need_data: bool, timeout: float) -> bool:
    """Until `expected_charts` charts are on the page, none loading, each drawn (need_data: with data) or
    saying "No results"; False on timeout (the caller reports which chart did not draw)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(states: list[dict]) -> bool:
        return len(states) == expected_charts and all(
            not s["loading"] and (s["drawn"] and not s["empty"] if need_data else s["drawn"] or s["empty"])
            for s in states)

    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, timeout, poll_frequency=1).until(lambda d: ready(chart_states(d)))
        return True
    return False


def fit_page_height(driver) -> bool:
    """Grow the window so that the whole page is in the screenshot; True if it changed."""
    page, view = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.innerHeight]")
    if page <= view:
        return False
    size = driver.get_window_size()
    driver.set_window_size(size["width"], size["height"] + page - view)
    return True


def open_dashboard(driver, base: str, slug: str, out: Path, expected_charts: int, time_range: str | None = None,
                   need_data: bool = False, timeout: float = RENDER_TIMEOUT_SEC) -> Shot:
    """Open a dashboard (logged-in driver), wait for every chart, save a PNG at `out`, say what was shown."""
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    driver.get(dashboard_url(base, slug, time_range))
    notes = []
    if not wait_for_charts(driver, expected_charts, need_data, timeout):
        notes.append(f"not every chart was ready after {timeout:.0f}s")
    if fit_page_height(driver):  # charts redraw at the new size
        wait_for_charts(driver, expected_charts, need_data, timeout)
    time.sleep(SETTLE_SEC)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return Shot(path=out, states=chart_states(driver), body=driver.find_element(By.TAG_NAME, "body").text,
                errors=visible_errors(driver), seconds=time.monotonic() - started, notes=notes)


def live_rows_shown(client: SupersetClient, chart_ids: list[int]) -> list[int]:
    """Rows each live chart's saved query returns now (what the dashboard would show)."""
    return [sum(len(r.get("data") or []) for r in client.chart_data(i)["result"]) for i in chart_ids]


def wait_for_live_rows(client: SupersetClient, charts: list[dict], wait_sec: float, poll_sec: float = 5) -> None:
    deadline = time.monotonic() + wait_sec
    problem = ""
    while True:
        try:
            rows, problem = live_rows_shown(client, [c["id"] for c in charts]), ""
        except SupersetError as exc:  # e.g. `make demo` re-provisions the charts while we wait: ask again
            rows, problem = [0] * len(charts), f"; chart query error: {exc}"
        if all(rows):
            shown = ", ".join(f"{c['slice_name']}={n}" for c, n in zip(charts, rows))
            log(f"live charts have rows: {shown}")
            return
        if time.monotonic() >= deadline:
            empty = [c["slice_name"] for c, n in zip(charts, rows) if not n]
            raise ScreenshotError(
                f"no live rows after {wait_sec:.0f}s in: {', '.join(empty)}. Live rows exist only while a day is "
                "replayed (stream running, e.g. `make demo`) and are deleted when the day is loaded; "
                f"retry during the replay with a larger --wait-rows (make: WAIT_ROWS=){problem}")
        log(f"waiting for live rows ({', '.join(str(n) for n in rows)} rows shown, "
            f"{deadline - time.monotonic():.0f}s left)")
        time.sleep(min(poll_sec, max(deadline - time.monotonic(), 0.1)))


def take(dashboard: str, out: Path, time_range: str | None = None, width: int = DEFAULT_WIDTH,
         wait_rows: float = 0, settings=None) -> Shot:
    """The CLI's work: check Superset, (live) wait for rows, screenshot, raise ScreenshotError on any problem."""
    settings = settings or load()
    base, slug = base_url(settings), DASHBOARDS[dashboard]
    try:
        requests.get(f"{base}/health", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        raise ScreenshotError(f"Superset is not reachable at {base} ({exc.__class__.__name__}); "
                              "start it with `make superset`") from None
    try:
        client = SupersetClient(base, settings.superset_admin_user, settings.superset_admin_password)
        charts = client.dashboard_charts(slug)
    except SupersetError as exc:
        raise ScreenshotError(f"Superset at {base} refused the admin or has no dashboard {slug!r} "
                              f"(run `make superset`): {exc}") from None
    log(f"{base}: dashboard {slug} with {len(charts)} charts"
        + (f", date range {time_range}" if time_range and dashboard in DATE_FILTERED else ""))
    if dashboard == "live" and wait_rows > 0:
        wait_for_live_rows(client, charts, wait_rows)
    log(f"starting headless Chromium ({width} px wide)")
    driver = chromium(width, HEIGHTS[dashboard])
    try:
        login(driver, base, settings.superset_admin_user, settings.superset_admin_password)
        log("logged in; opening the dashboard and waiting for every chart")
        shot = open_dashboard(driver, base, slug, out, len(charts),
                              time_range=time_range if dashboard in DATE_FILTERED else None,
                              need_data=dashboard == "live" and wait_rows > 0)
    finally:
        driver.quit()
    for s in shot.states:
        log(f"  {s['title']}: " + ("ERROR " + s["error"] if s["error"] else "loading" if s["loading"]
                                   else "no results" if s["empty"] else "drawn" if s["drawn"] else "NOT DRAWN"))
    problems = [f"{s['title']}: {s['error']}" for s in shot.states if s["error"]]
    problems += [f"error on the page: {e}" for e in shot.errors if not any(e in p for p in problems)]
    problems += [f"{s['title']}: not drawn" for s in shot.states
                 if not s["error"] and (s["loading"] or not (s["drawn"] or s["empty"]))]
    if len(shot.states) != len(charts):
        problems.append(f"{len(shot.states)} charts on the page, the dashboard has {len(charts)}")
    if problems:
        raise ScreenshotError(f"screenshot saved to {out}, but: " + "; ".join(problems + shot.notes))
    return shot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gold.superset.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboard", choices=sorted(DASHBOARDS), default="main",
                        help="main = TripClick Clinical Search, live = TripClick Live, "
                             "health = TripClick Pipeline health")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--time-range", help="main, health: the Date range filter, 'START : END' (END excluded), "
                                             "e.g. '2026-01-01 : 2026-02-02'; default: no filter (every date)")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help=f"window width in px ({DEFAULT_WIDTH})")
    parser.add_argument("--wait-rows", type=float, default=0, metavar="SECONDS",
                        help="live: poll up to SECONDS until every live chart has rows, then wait for them to draw")
    args = parser.parse_args(argv)
    if args.dashboard == "live" and args.time_range:
        parser.error("--time-range applies to main and health (TripClick Live shows the newest live date)")
    if args.dashboard != "live" and args.wait_rows:
        parser.error("--wait-rows applies to the live dashboard")
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    try:
        shot = take(args.dashboard, out, args.time_range, args.width, args.wait_rows)
    except ScreenshotError as exc:
        log(f"ERROR: {exc}")
        return 1
    empty = sum(1 for s in shot.states if s["empty"])
    if empty:
        log(f"note: {empty} chart(s) show no results"
            + {"main": " (no marts in that date range?)", "live": " (no live rows: --wait-rows)",
               "health": " (no pipeline_runs or quality failures in that date range?)"}[args.dashboard])
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    print(f"screenshots: dashboard={args.dashboard} charts={len(shot.states)} errors=0 empty={empty} "
          f"seconds={shot.seconds:.0f} out={shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
