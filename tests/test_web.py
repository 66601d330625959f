"""The web pages in a real browser: `model-eval-gate web` as a subprocess against
a test database holding real verdicts (promote, reject with a ticket, two
tradeoffs, the second against a biocreep anchor, an error with a hostile
stderr, a forced promotion, and queued, running and failed jobs), read by
headless Debian Chromium with JavaScript switched off (the pages must not need
it). Every number checked on a page is checked against the database; the
screenshots are kept in test-artifacts/web-screenshots/ (.gitignored; the path is printed).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import uuid
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from conftest import _create_database, _drop_database
from gate_world import World

from model_eval_gate import db, force_promote, run_eval_gate
from model_eval_gate.config import Settings
from model_eval_gate.gate import claim_for_artifact

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE_STDERR = "<script>document.title='pwned'</script> weights & biases <b>missing</b>"
FORCED_BY = "Dr. Ada Lovelace"
pytestmark = pytest.mark.slow


# ------------------------------------------------------------------ world --

@pytest.fixture(scope="module")
def world(pg_admin_dsn, migrated_template, tmp_path_factory):
    name, dsn = _create_database(pg_admin_dsn, migrated_template)
    tmp = tmp_path_factory.mktemp("web-world")
    settings = Settings(dsn=dsn, home=tmp / "home", artifact_root=tmp / "artifacts")
    conn = db.connect(settings, autocommit=True)
    w = World(settings, conn, tmp, n=200, non_inferiority_margin=0.05, guardrails={"log_loss": 0.3})
    outcomes = {}

    def gate(artifact_id: str) -> None:
        result = run_eval_gate(artifact_id, settings=settings)
        outcomes[artifact_id] = (result["outcome"], result["reason_code"])

    # weights: what the gate counts for param_count claims (never the metadata).
    w.model("root", strength=0.5, weights=1000)
    gate("root")
    w.model("better", strength=0.95, parent="root", weights=1000)
    gate("better")
    w.model("worse", strength=0.0, parent="better")
    gate("worse")
    w.model("smaller", strength=0.94, parent="better", parameter_count=500, weights=500,
            tradeoff_justification={"param_count": "-50%", "rationale": "pruned half the features"})
    gate("smaller")
    w.model("smallest", strength=0.93, parent="smaller", parameter_count=250, weights=250,
            tradeoff_justification={"param_count": "-50%", "rationale": "pruned again"})
    gate("smallest")
    w.model("crashing", parent="smallest",
            eval_source=f"import sys\nprint({HOSTILE_STDERR!r}, file=sys.stderr)\nsys.exit(3)\n")
    gate("crashing")
    force_promote("worse", FORCED_BY, "the clinical review prefers it despite the metric", settings=settings)
    # The queue's three states, made the way the daemon makes them.
    w.model("waiting", strength=0.9, parent="worse")  # registration queues its job
    w.model("busy", strength=0.9, parent="worse")
    claim_for_artifact(conn, settings, "busy", worker_id="host-a:1/w1", reason="registered", requested_by="test")
    w.model("broken", strength=0.9, parent="worse")
    job = claim_for_artifact(conn, settings, "broken", worker_id="host-b:2/w1", reason="registered",
                             requested_by="test")
    db.fetch_one(conn, "fail_job", {"job_id": job.job_id, "worker_id": job.worker_id, "attempt": job.attempt,
                                    "error": "RaiseException: disk quota exceeded (simulated)"})
    assert outcomes == {
        "root": ("promote", "root_version"), "better": ("promote", "improved"),
        "worse": ("reject", "primary_regressed"), "smaller": ("promote_with_tradeoff", "tradeoff_verified"),
        "smallest": ("promote_with_tradeoff", "tradeoff_verified"), "crashing": ("error", "sandbox_failure"),
    }, outcomes
    w.dsn = dsn
    yield w
    conn.close()
    _drop_database(pg_admin_dsn, name)


def verdict_of(world, artifact_id: str) -> dict:
    return world.conn.execute("SELECT id, result FROM gate_jobs WHERE artifact_id = %s AND status = 'done' "
                              "ORDER BY id DESC LIMIT 1", (artifact_id,)).fetchone()


# ----------------------------------------------------------------- server --

@contextlib.contextmanager
def web_server(environment: dict[str, str], log: Path, *extra_args: str):
    """`model-eval-gate web --port 0` as a subprocess; yields its printed address (test_demo uses it too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env.update(PYTHONPATH=str(ROOT / "daemon"), **environment)
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "model_eval_gate.cli", "web", "--port", "0", *extra_args],
                                env=env, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        assert "serving http://127.0.0.1:" in line, f"no address printed: {line!r}\n{log.read_text()}"
        yield line.split("serving ", 1)[1].split()[0].rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def server(world, tmp_path_factory):
    log = tmp_path_factory.mktemp("web-server") / "stderr.log"
    with web_server({"MODEL_EVAL_GATE_DSN": world.dsn}, log, "--refresh", "7") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's chromium, launched as it is (Playwright's own browser builds are never downloaded).
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="meg-chromium-"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, java_script_enabled=False, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots():
    """Kept after the run, for a person (and CI) to look at: test-artifacts/ is .gitignored."""
    directory = Path(os.environ.get("MODEL_EVAL_GATE_SCREENSHOT_DIR") or ROOT / "test-artifacts" / "web-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {directory}")
    return directory


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def open_page(page, server: str, path: str, screenshots: Path, name: str):
    response = page.goto(server + path)
    assert response.status == 200, (path, response.status, page.content()[:2000])
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    return response


def api(server: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server + path, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def number(value, digits: int = 4) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def signed(value, digits: int = 4) -> str:
    return "\u2013" if value is None else f"{value:+.{digits}f}"


def oriented(row: dict) -> tuple[float, float, float]:
    if row["higher_is_better"] is False:
        return -row["delta"], -row["ci_high"], -row["ci_low"]
    return row["delta"], row["ci_low"], row["ci_high"]


# --------------------------------------------------------------- verdicts --

@pytest.mark.parametrize("artifact_id", ["better", "worse", "smaller", "smallest"])
def test_a_verdict_page_shows_the_database_verdict_with_one_interval_per_metric(
        world, server, page, screenshots, artifact_id):
    job = verdict_of(world, artifact_id)
    result = job["result"]
    response = open_page(page, server, f"/verdicts/{artifact_id}", screenshots, f"verdict-{artifact_id}")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script at all
    assert page.inner_text("#reason-code") == result["reason_code"]
    assert page.inner_text("#reason") == result["reason"]
    assert result["outcome"].replace("_", " ") in page.inner_text("#verdict .outcome")

    # The metric table: every number as the database has it, primary and guardrail marked.
    table = result["metric_table"]
    assert page.locator("#metric-table tbody tr").count() == len(table)
    for row in table:
        cells = page.locator(f'#metric-table tr[data-metric="{row["metric"]}"]')
        assert cells.get_attribute("class") == row["role"]
        for field, shown in (("candidate", number), ("parent", number), ("delta", signed), ("ci_low", signed),
                             ("ci_high", signed)):
            assert cells.locator(f'td[data-field="{field}"]').inner_text() == shown(row[field]), (row, field)
    assert {r["role"] for r in table} == {"primary", "guardrail", "secondary"}

    # The forest plot: one interval per metric, oriented so that right is better.
    plot = page.locator("svg.forest-plot")
    assert plot.count() == 1
    intervals = plot.locator("g.interval")
    assert intervals.count() == len(table)
    for row in table:
        drawn = plot.locator(f'g.interval[data-metric="{row["metric"]}"]')
        want = oriented(row)
        got = tuple(float(drawn.get_attribute(a)) for a in ("data-delta", "data-ci-low", "data-ci-high"))
        assert all(math.isclose(g, w, rel_tol=1e-5, abs_tol=1e-9) for g, w in zip(got, want)), (row, got)
        assert drawn.get_attribute("data-role") == row["role"]
    assert plot.locator("line.zero-line").count() == 1
    references = {(r.get_attribute("data-metric"), r.get_attribute("data-kind")): float(r.get_attribute("data-reference"))
                  for r in plot.locator("line.reference-line").all()}
    assert references[("auroc", "metric")] == -0.05  # the non-inferiority margin, on the primary row
    assert references[("log_loss", "metric")] == -0.3  # the guardrail's tolerance
    # Right is better: a better delta sits further right.
    box = {r["metric"]: plot.locator(f'g.interval[data-metric="{r["metric"]}"] circle').bounding_box() for r in table}
    zero = plot.locator("line.zero-line").bounding_box()["x"]
    primary = next(r for r in table if r["role"] == "primary")
    assert (box[primary["metric"]]["x"] + 5 > zero) == (oriented(primary)[0] > 0)

    evaluations = page.locator("#evaluations tbody tr")
    assert evaluations.count() == len(result["evaluations"])
    candidate = result["evaluations"]["candidate"]
    text = page.locator('#evaluations tr[data-model="candidate"]').inner_text()
    assert candidate["model_hash"][:16] in text and ("yes" if candidate["sandboxed"] else "NO") in text
    assert result["split_hash"] in page.inner_text("body")
    assert page.locator(f'#jobs tr[data-job="{job["id"]}"]').count() == 1


def test_a_rejection_shows_its_ticket_and_the_forced_promotion_that_overrode_it(world, server, page, screenshots):
    open_page(page, server, "/verdicts/worse", screenshots, "verdict-worse-forced")
    ticket = world.conn.execute("SELECT id, assignee, title FROM tickets WHERE artifact_id = 'worse'").fetchone()
    assert f"Ticket #{ticket['id']}" in page.inner_text("p.ticket") and ticket["assignee"] in page.inner_text("p.ticket")
    forced = page.inner_text("#forced-promotion")
    assert FORCED_BY in forced and "clinical review" in forced and "smallest" in forced


def test_a_tradeoff_shows_what_was_claimed_and_measured_and_the_biocreep_anchor(world, server, page, screenshots):
    result = verdict_of(world, "smallest")["result"]
    open_page(page, server, "/verdicts/smallest", screenshots, "verdict-smallest-tradeoff")
    claim = result["tradeoff"]["claims"]["param_count"]
    row = page.inner_text('tr[data-claim="param_count"]')
    assert (claim["measured"]["candidate"], claim["measured"]["parent"]) == (250, 500)
    assert "250" in row and "500" in row and "verified" in row and "-50%" in row
    anchor = result["compared_with_baseline"]
    assert anchor["version_id"] == "better" and not anchor["is_parent"]  # the last plain promotion, not the parent
    text = page.inner_text("#anchor")
    assert number(anchor["candidate"]) in text and number(anchor["baseline"]) in text and signed(anchor["delta"]) in text
    drawn = page.locator("svg.forest-plot g.anchor-interval")
    assert drawn.count() == 1
    assert math.isclose(float(drawn.get_attribute("data-ci-low")), oriented(anchor | {"higher_is_better": True})[1],
                        rel_tol=1e-5)


def test_an_error_shows_the_escaped_stderr_tail_and_no_plot(world, server, page, screenshots):
    result = verdict_of(world, "crashing")["result"]
    open_page(page, server, "/verdicts/crashing", screenshots, "verdict-crashing-error")
    assert page.inner_text("#reason-code") == "sandbox_failure"
    assert HOSTILE_STDERR in page.inner_text("#stderr-tail")  # shown as text ...
    assert page.locator("#stderr-tail script, #stderr-tail b").count() == 0  # ... never as markup
    assert page.title() != "pwned"
    assert result["stderr_tail"].strip() in page.inner_text("#stderr-tail")
    assert page.locator("svg.forest-plot").count() == 0


# ---------------------------------------------------------- other pages --

def test_the_lineage_page_shows_who_was_head_when(world, server, page, screenshots):
    open_page(page, server, "/lineages/root", screenshots, "lineage")
    history = world.conn.execute(
        "SELECT artifact_id, actor, metadata->>'forced' AS forced FROM artifact_lifecycle_history "
        "WHERE to_state = 'active' ORDER BY created_at, id").fetchall()
    assert [h["artifact_id"] for h in history] == ["root", "better", "smaller", "smallest", "worse"]
    rows = page.locator("#head-periods tbody tr")
    assert rows.count() == len(history)
    for row, h in zip(rows.all(), history):
        text = row.inner_text()
        assert h["artifact_id"] in text and h["actor"] in text
    assert "force-promoted" in rows.nth(4).inner_text() and FORCED_BY in rows.nth(4).inner_text()
    assert "now" in rows.nth(4).inner_text()
    events = [e.get_attribute("data-event") for e in page.locator("#timeline tbody tr").all()]
    for expected in ("registered", "promoted", "superseded", "rejected", "gate error", "force-promoted"):
        assert expected in events
    # The primary metric of every promotion; the forced one at what its rejection measured.
    # The full table is the promotion's gate job's (its event may carry only the author's release).
    promoted = world.conn.execute(
        "SELECT w.target_artifact_id, w.detection_metadata, "
        "       COALESCE(j.result->'metric_table', w.detection_metadata->'metric_table') AS metric_table "
        "  FROM world_model_improvements w LEFT JOIN gate_jobs j ON j.id = (w.detection_metadata->>'job_id')::bigint "
        " ORDER BY w.created_at, w.id").fetchall()
    points = page.locator("svg.metric-timeline g.timeline-point")
    rejection = verdict_of(world, "worse")["result"]["metric_table"]
    measured = [(p["target_artifact_id"], next(r["candidate"] for r in p["metric_table"] or rejection
                                               if r["role"] == "primary"))
                for p in promoted]
    assert measured[-1][0] == "worse" and promoted[-1]["detection_metadata"].get("forced") is True
    assert [(p.get_attribute("data-version"), float(p.get_attribute("data-value"))) for p in points.all()] == \
        [(a, pytest.approx(v, rel=1e-5)) for a, v in measured]


def test_the_queue_page_shows_queued_running_and_failed_jobs_and_refreshes_itself(world, server, page, screenshots):
    open_page(page, server, "/queue", screenshots, "queue")
    assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "7"
    jobs = {r["artifact_id"]: r for r in world.conn.execute(
        "SELECT id, artifact_id, status, worker_id, attempt, max_attempts, error FROM gate_jobs "
        "WHERE status IN ('queued', 'running', 'failed')").fetchall()}
    assert {a: j["status"] for a, j in jobs.items()} == {"waiting": "queued", "busy": "running", "broken": "failed"}
    running = page.inner_text(f'#running tr[data-job="{jobs["busy"]["id"]}"]')
    assert "host-a:1/w1" in running and "1/3" in running and "s" in running
    assert "waiting" in page.inner_text(f'#queued tr[data-job="{jobs["waiting"]["id"]}"]')
    assert jobs["broken"]["error"] in page.inner_text(f'#failed tr[data-job="{jobs["broken"]["id"]}"]')
    assert "no daemon is connected" in page.inner_text("#daemons")
    decided = world.conn.execute("SELECT count(*) AS n FROM gate_jobs WHERE status = 'done'").fetchone()["n"]
    assert page.locator("table.decisions tbody tr").count() == decided


def test_the_benchmarks_page_shows_each_split_and_its_use(world, server, page, screenshots):
    open_page(page, server, "/benchmarks", screenshots, "benchmarks")
    row = page.inner_text(f'tr[data-benchmark="{world.benchmark.id}"]')
    verdicts = world.conn.execute("SELECT count(*) AS n FROM gate_jobs WHERE status = 'done' "
                                  "AND result->>'benchmark_id' = %s", (world.benchmark.id,)).fetchone()["n"]
    for shown in ("binary", "200", "auroc", "log_loss (0.3)", "0.05", world.benchmark.split_hash[:16], str(verdicts)):
        assert shown in row, (shown, row)


def test_the_overview_links_to_every_lineage_and_verdict_without_javascript(world, server, page, screenshots):
    open_page(page, server, "/", screenshots, "overview")
    page.click('table.lineages a[href$="/lineages/root"]')
    assert page.url.endswith("/lineages/root")
    page.click('#head-periods a[href$="/verdicts/better"]')
    assert page.url.endswith("/verdicts/better") and page.inner_text("#reason-code") == "improved"
    page.click("a.twin")
    assert json.loads(page.inner_text("body"))["verdict"]["reason_code"] == "improved"


# ------------------------------------------------------------ JSON twins --

def test_every_page_has_a_json_twin_with_the_same_data(world, server):
    status, data = api(server, "/api/verdicts/smallest")
    stored = verdict_of(world, "smallest")
    assert status == 200 and data["verdict"]["job_id"] == stored["id"]
    assert data["verdict"]["metric_table"] == stored["result"]["metric_table"]
    assert data["verdict"]["tradeoff"] == stored["result"]["tradeoff"]
    assert len([r for r in data["forest_plot"] if r["kind"] == "metric"]) == len(stored["result"]["metric_table"])
    status, data = api(server, "/api/lineages/smallest")  # any version names its lineage
    assert status == 200 and data["lineage_id"] == "root" and data["head"] == "worse"
    status, data = api(server, "/api/queue")
    assert status == 200 and [j["artifact_id"] for j in data["running"]] == ["busy"]
    assert data["failed"]["total"] == 1 and data["queued"]["due"] == 1
    status, data = api(server, "/api/benchmarks")
    assert status == 200 and data["benchmarks"][0]["non_inferiority_margin"] == 0.05
    status, data = api(server, "/api")
    assert status == 200 and {l["lineage_id"] for l in data["lineages"]} == {"root"}
    status, data = api(server, "/api/verdicts/no-such-version")
    assert status == 404 and "no-such-version" in data["error"]


def test_an_unknown_version_is_a_404_page(server, page):
    response = page.goto(server + "/verdicts/no-such-version")
    assert response.status == 404 and "no-such-version" in page.inner_text("main")


# ------------------------------------------------------- a read-only role --

READ_ONLY_GRANTS = """
    CREATE ROLE {role} LOGIN;
    GRANT CONNECT ON DATABASE {database} TO {role};
    GRANT USAGE ON SCHEMA public TO {role};
    GRANT SELECT ON artifacts, model_versions, gate_jobs, eval_results, benchmarks, tickets,
                    artifact_lifecycle_history, world_model_improvements, model_eval_gate_migrations,
                    holdout_splits, holdout_queries TO {role};
    ALTER ROLE {role} SET default_transaction_read_only = on;
"""


def test_the_documented_read_only_role_serves_every_page(world, tmp_path):
    docs = (ROOT / "docs" / "web.md").read_text()
    for grant in ("GRANT SELECT ON artifacts, model_versions, gate_jobs, eval_results, benchmarks, tickets,",
                  "artifact_lifecycle_history, world_model_improvements, model_eval_gate_migrations,",
                  "holdout_splits, holdout_queries TO gate_web;",
                  "ALTER ROLE gate_web SET default_transaction_read_only = on;"):
        assert grant in docs  # the recipe tested here is the one documented
    role = f"gate_web_{uuid.uuid4().hex[:8]}"
    database = world.conn.info.dbname
    with psycopg.connect(world.dsn, autocommit=True) as admin:  # a superuser in the world's database
        admin.execute(READ_ONLY_GRANTS.format(role=role, database=database))
    try:
        role_dsn = psycopg.conninfo.make_conninfo(world.dsn, user=role)
        # The operator's DSN is unusable: the web must use MODEL_EVAL_GATE_WEB_DSN.
        environment = {"MODEL_EVAL_GATE_DSN": "postgresql://nobody@127.0.0.1:1/nothing",
                       "MODEL_EVAL_GATE_WEB_DSN": role_dsn}
        with web_server(environment, tmp_path / "stderr.log") as url:
            for path in ("/api", "/api/verdicts/smallest", "/api/lineages/root", "/api/queue", "/api/benchmarks"):
                status, data = api(url, path)
                assert status == 200, (path, data)
            assert api(url, "/api/verdicts/smallest")[1]["neighbours"]["available"] is True
    finally:
        with psycopg.connect(world.dsn, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY {role}')
            admin.execute(f'DROP ROLE {role}')


def test_a_page_reads_in_a_read_only_transaction(world):
    from model_eval_gate.web import pages

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with pages.snapshot(world.conn):
            world.conn.execute("UPDATE gate_jobs SET error = 'written by the web' WHERE false")
    assert world.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


# ------------------------------------------------------ serving it ----------

def test_behind_a_proxy_prefix_every_link_stays_under_it(world, tmp_path):
    with web_server({"MODEL_EVAL_GATE_DSN": world.dsn}, tmp_path / "stderr.log", "--root-path", "/gate/") as url:
        assert url.endswith("/gate")
        base = url.removesuffix("/gate")
        # The proxy strips the prefix (nginx: proxy_pass http://127.0.0.1:8765/;), as docs/web.md has it.
        with urllib.request.urlopen(base + "/queue", timeout=15) as response:
            html = response.read().decode()
        assert 'href="/gate/benchmarks"' in html and 'href="/gate/api/queue"' in html
        assert 'href="/queue"' not in html and 'href="/benchmarks"' not in html


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    environment.update(PYTHONPATH=str(ROOT / "daemon"), **env)
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=environment,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_an_unmigrated_database_or_a_taken_port_is_one_clear_line(empty_dsn, world):
    run = cli({"MODEL_EVAL_GATE_DSN": empty_dsn}, "web", "--port", "0")
    assert run.returncode != 0 and "model-eval-gate migrate" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = cli({"MODEL_EVAL_GATE_DSN": world.dsn}, "web", "--port", str(taken.getsockname()[1]))
    assert run.returncode == 1 and "cannot listen on 127.0.0.1:" in run.stderr and "--port" in run.stderr
    assert "Traceback" not in run.stderr


def test_every_outcome_and_promotion_state_has_its_colour():
    """A new outcome (awaiting_confirmation came with self-scored confirmation) must not render as a bare badge."""
    from model_eval_gate.decision import Outcome
    import model_eval_gate.web

    css = (Path(model_eval_gate.web.__file__).parent / "templates" / "base.html").read_text()
    for name in [o.value for o in Outcome] + ["candidate", "promoted", "rejected", "superseded"]:
        assert f".badge.{name} " in css or f".badge.{name}," in css, name
    for outcome in Outcome:
        assert f".verdict-box.{outcome.value} " in css, outcome.value
