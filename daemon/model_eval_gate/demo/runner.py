"""`model-eval-gate demo`: the product working for real, on its own embedded PostgreSQL.

What a run does, in its own home directory (never a configured DSN):

1. starts (or reuses) the embedded PostgreSQL in <home>/pgdata and resets the
   demo's database: every run starts from scratch, so the demo is rerunnable;
   migrates; loads the platform's 8 legacy model artifacts and backfills them;
2. writes six benchmarks from data generated in code (demo/datasets.py) and a
   real eval.py with fitted weights for every legacy model, links each legacy
   model to its benchmark (the operator's step, sql/queries/demo.sql), and runs
   every legacy model once in the sandbox to show it works (the gate reuses
   these evaluations from its cache);
3. starts the daemon (`model-eval-gate run`) as a subprocess, logging JSON lines
   to <home>/logs/daemon.log, and inserts the candidates of demo/scenario.py
   with plain SQL, as a training pipeline would, in two rounds;
4. prints each verdict as the daemon applies it, then the verdict table, the
   checks it made on the database, and how to look further; stops the daemon
   with SIGTERM and leaves the database running (`demo --stop` stops it).

Exit status 0 when every verdict and every database check is the expected
one, 1 otherwise (or on an operational failure, with what went wrong).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psycopg

from .. import db, embedded
from ..config import PREFIX, Settings
from . import scenario
from .datasets import write_benchmark
from .training import WEIGHTS_FILE, write_model_dir
from .verdicts import Verdict, explanation, primary_text, problems, render_table

DEMO_DIR_NAME = "model-eval-gate-demo"
DAEMON_WORKERS = 2
DEFAULT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 0.25
# The daemon's own grace period plus time to hand jobs back; it exits well before.
DAEMON_STOP_SECONDS = 45.0
REPO_URL = "https://github.com/research-platform/ad-risk"
# Environment variables the demo sets for the daemon itself; every other
# MODEL_EVAL_GATE_* setting (sandbox limits, resamples, ...) is passed through.
_DEMO_OWNED_SETTINGS = ("DSN", "HOME", "ARTIFACT_ROOT", "WORKERS", "LOG_LEVEL")


class DemoError(RuntimeError):
    """The demo could not run (not a wrong verdict: those are reported, and make the exit status 1)."""


def default_demo_home() -> Path:
    """<XDG data dir>/model-eval-gate-demo; /var/lib/model-eval-gate-demo for root.

    As root, pgserver runs PostgreSQL as its own system user, which cannot
    enter root's 0700 home directory; /var/lib is where root's services keep data.
    """
    if os.geteuid() == 0:
        return Path("/var/lib") / DEMO_DIR_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / DEMO_DIR_NAME


def _first_closed_directory(path: Path) -> Path | None:
    """The first directory on the way to path that other users cannot enter, or None."""
    for directory in [*reversed(path.parents), path]:
        if directory.exists() and not os.stat(directory).st_mode & 0o001:
            return directory
    return None


# ---------------------------------------------------------------- output --

WIDTH = 99  # every line fits a 100-column terminal


def fit(text: str, indent: str = "", rest: str | None = None) -> str:
    """text after indent, wrapped at WIDTH (continuation lines indented by rest); a line that fits is left as is."""
    if len(indent) + len(text) <= WIDTH:
        return indent + text
    rest = indent + "  " if rest is None else rest
    return textwrap.fill(text, width=WIDTH, initial_indent=indent, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False)


class Console:
    """The demo's narrative on stdout, each step stamped with the seconds since the start, WIDTH columns at most."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, text: str) -> None:
        print("\n" + fit(text, f"[{self.elapsed:5.1f}s] ", " " * 10), file=self.stream, flush=True)

    def line(self, text: str = "") -> None:
        print(fit(text, " " * 8, " " * 10) if text else "", file=self.stream, flush=True)

    def raw(self, text: str) -> None:
        for line in text.split("\n"):  # each line keeps its own indentation
            body = line.lstrip(" ")
            print(fit(body, line[: len(line) - len(body)]), file=self.stream, flush=True)


# ----------------------------------------------------------------- paths --

@dataclass(frozen=True)
class DemoPaths:
    home: Path

    @property
    def artifact_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def benchmarks(self) -> Path:
        return self.home / "benchmarks"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def daemon_log(self) -> Path:
        return self.logs / "daemon.log"

    @property
    def daemon_stderr(self) -> Path:
        return self.logs / "daemon.stderr.log"

    @property
    def demo_log(self) -> Path:
        return self.logs / "demo.log"

    @property
    def report(self) -> Path:
        return self.home / "migration_report_ws1.md"

    @property
    def daemon_pid(self) -> Path:
        return self.home / "daemon.pid"

    @property
    def lock(self) -> Path:
        return self.home / "demo.lock"


# ---------------------------------------------------------------- daemon --

def _is_our_daemon(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"model_eval_gate.cli" in cmdline and b"run" in cmdline


def stop_previous_daemon(paths: DemoPaths) -> int | None:
    """Stop a daemon an interrupted earlier demo left running in this home; returns its pid."""
    try:
        pid = int(paths.daemon_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    paths.daemon_pid.unlink(missing_ok=True)
    if not _is_our_daemon(pid):
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DAEMON_STOP_SECONDS
    while time.monotonic() < deadline and _is_our_daemon(pid):
        time.sleep(0.1)
    if _is_our_daemon(pid):
        os.kill(pid, signal.SIGKILL)
    return pid


def daemon_environment(paths: DemoPaths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not any(k == PREFIX + name for name in _DEMO_OWNED_SETTINGS)}
    env.update({PREFIX + "HOME": str(paths.home), PREFIX + "ARTIFACT_ROOT": str(paths.artifact_root),
                PREFIX + "WORKERS": str(DAEMON_WORKERS), PREFIX + "LOG_LEVEL": "info"})
    return env


class DaemonProcess:
    """`model-eval-gate run` as a child process, its JSON log lines going to a file."""

    def __init__(self, paths: DemoPaths):
        self.paths = paths
        self.process: subprocess.Popen | None = None

    def start(self) -> int:
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with open(self.paths.daemon_log, "ab") as stdout, open(self.paths.daemon_stderr, "ab") as stderr:
            # Its own session: a Ctrl-C on the demo reaches the demo, which
            # then stops the daemon the clean way (SIGTERM), not both at once.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "model_eval_gate.cli", "run", "--workers", str(DAEMON_WORKERS)],
                env=daemon_environment(self.paths), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.paths.daemon_pid.write_text(f"{self.process.pid}\n")
        return self.process.pid

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> int | None:
        """SIGTERM, then wait; returns the exit status (None if it had to be killed)."""
        if self.process is None:
            return None
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    return self.process.wait(timeout=DAEMON_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    return None
            return self.process.returncode
        finally:
            self.paths.daemon_pid.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in (self.paths.daemon_log, self.paths.daemon_stderr):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if text:
                parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or "(the daemon wrote no log)"


# -------------------------------------------------------------- the run --

class DemoRun:
    def __init__(self, home: Path, *, stream: TextIO, timeout: float, base_settings: Settings):
        self.paths = DemoPaths(home)
        self.console = Console(stream)
        self.timeout = timeout
        self.settings = base_settings.with_(dsn=None, home=home, artifact_root=self.paths.artifact_root)
        self.dsn = ""
        self.daemon = DaemonProcess(self.paths)
        self.labels = {scenario.ABETA_ODE: "ode root", scenario.MICROGLIA_ODE: "ode root",
                       **{c.artifact_id: c.label for c in scenario.CANDIDATES}}

    # ---------------------------------------------------------- steps --

    def prepare_database(self) -> None:
        from .. import migrate
        from ..catalog import backfill

        c = self.console
        server = self.server = embedded.ensure_server(self.paths.home)
        admin = server.dsn("postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{embedded.DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{embedded.DATABASE}"')
        self.dsn = server.dsn()
        self.settings = self.settings.with_(dsn=self.dsn)
        c.step("Embedded PostgreSQL (pgvector) is up; the demo's database was reset")
        c.line(f"database   {self.dsn}")
        c.line(f"data dir   {server.pgdata}")
        applied = migrate.migrate(self.dsn)
        c.line(f"migrated   {len(applied)} migrations ({applied[0].path.name} to {applied[-1].path.name})"
               if applied else "migrated   (nothing to do)")
        outcome = backfill(settings=self.settings, report_path=self.paths.report, load_fixture=True)
        with db.connect(self.dsn, autocommit=True) as conn:
            states = db.fetch_all(conn, "demo_promotion_states")
        c.step(f"Backfill (WS1, the platform's migration of its legacy models): {len(outcome.adopted)} legacy "
               "model artifacts now have model_versions rows, the record the gate decides on")
        c.line(", ".join(f"{r['n']} {r['promotion_state']}" for r in states)
               + " (the two biophysical ODE models wait for the gate, their jobs are queued)")
        c.line(f"migration report: {outcome.report_path}")

    def build_benchmarks_and_models(self) -> None:
        from ..benchmark import load_benchmark, record_benchmark

        c = self.console
        for directory in (self.paths.benchmarks, self.paths.artifact_root):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            directory.chmod(0o755)
        (self.paths.artifact_root / "models").mkdir(mode=0o755)
        (self.paths.artifact_root / "models").chmod(0o755)
        c.step(f"Benchmarks, generated in code with fixed seeds, in {self.paths.benchmarks}")
        c.line("(a guardrail is a second metric that may not get worse by more than its threshold; the margin "
               "is how much worse the primary metric may get when a verified tradeoff pays for it)")
        self.benchmarks = {}
        with db.connect(self.dsn, autocommit=True) as conn:
            for spec in scenario.BENCHMARKS:
                directory = write_benchmark(self.paths.benchmarks, spec.manifest, spec.draw(),
                                            inputs_name=spec.inputs_name, classes=spec.classes)
                benchmark = load_benchmark(directory)
                record_benchmark(conn, benchmark)
                self.benchmarks[benchmark.id] = benchmark
                extra = ""
                if benchmark.guardrails:
                    extra += ", guardrail " + ", ".join(f"{m} {t:g}" for m, t in benchmark.guardrails.items())
                if benchmark.non_inferiority_margin is not None:
                    extra += f", margin {benchmark.non_inferiority_margin:g}"
                c.line(f"{benchmark.id:<30} {benchmark.task:<10} n={benchmark.n_examples:<5} "
                       f"primary {benchmark.primary_metric}{extra}")

            c.step(f"A real eval.py for each legacy model, in {self.paths.artifact_root / 'models'}")
            for model in scenario.LEGACY_MODELS:
                write_model_dir(self.paths.artifact_root / "models" / model.artifact_id, model.template,
                                model.weights())
                db.fetch_one(conn, "demo_link_benchmark", {"artifact_id": model.artifact_id,
                                                           "benchmark_id": model.benchmark_id})
            self.titles = {r["id"]: r["title"] for r in db.fetch_all(conn, "demo_titles")}
        c.line("the operator linked each legacy model to its benchmark (sql/queries/demo.sql, demo_link_benchmark)")
        self._score_legacy_models()

    def _score_legacy_models(self) -> None:
        """Run every legacy eval.py once, sandboxed, as the operator's check before switching the gate on."""
        from .. import stats
        from ..evaluate import EvaluationError, evaluate

        c = self.console
        c.step("Each legacy model runs in the bubblewrap sandbox on its benchmark (results cached for the gate)")

        def run(model: scenario.LegacyModel):
            benchmark = self.benchmarks[model.benchmark_id]
            with db.connect(self.dsn, autocommit=True) as conn:
                try:
                    evaluation = evaluate(conn, self.settings, model.artifact_id, benchmark)
                except EvaluationError as exc:
                    return model, None, str(exc)
            return model, evaluation, stats.scores_on_benchmark(benchmark, evaluation.predictions)

        with ThreadPoolExecutor(max_workers=DAEMON_WORKERS) as pool:
            results = list(pool.map(run, scenario.LEGACY_MODELS))
        failures = []
        for model, evaluation, scores in results:
            title = self.titles.get(model.artifact_id, model.artifact_id)
            if evaluation is None:
                failures.append(f"{title}: {scores}")
                c.line(f"{title[:50]:<50} FAILED: {scores}")
                continue
            primary = self.benchmarks[model.benchmark_id].primary_metric
            c.line(f"{title[:50]:<50} {model.template:<20} {primary} {scores[primary]:.4f}  "
                   f"({evaluation.wall_seconds:.2f}s{'' if evaluation.sandboxed else ', UNSANDBOXED'})")
        if failures:
            raise DemoError("legacy models failed to evaluate:\n  " + "\n  ".join(failures))

    def start_daemon(self) -> None:
        c = self.console
        pid = self.daemon.start()
        deadline = time.monotonic() + 30
        with db.connect(self.dsn, autocommit=True) as conn:
            while not db.fetch_one(conn, "daemons_connected")["daemons"]:
                if self.daemon.exited() is not None:
                    raise DemoError(f"the daemon exited with status {self.daemon.exited()}:\n{self.daemon.log_tail()}")
                if time.monotonic() > deadline:
                    raise DemoError(f"the daemon did not connect within 30 s:\n{self.daemon.log_tail()}")
                time.sleep(0.1)
        c.step(f"Daemon started: model-eval-gate run --workers {DAEMON_WORKERS} (pid {pid})")
        c.line(f"log: {self.paths.daemon_log} (JSON lines)")

    def insert_candidates(self, round_number: int) -> list[str]:
        c = self.console
        inserted = []
        c.step(f"Training pipeline, round {round_number}: new versions inserted with plain SQL "
               "(INSERT INTO artifacts; INSERT INTO model_versions)")
        with db.connect(self.dsn, autocommit=True) as conn:
            for candidate in (x for x in scenario.CANDIDATES if x.round == round_number):
                directory = self.paths.artifact_root / "models" / candidate.artifact_id
                write_model_dir(directory, candidate.template, candidate.weights())
                with conn.transaction():
                    row = db.fetch_one(conn, "demo_insert_candidate_artifact", {
                        "id": candidate.artifact_id, "title": candidate.title, "parent_id": candidate.parent_id,
                        "version_tag": None, "changelog": candidate.changelog,
                        "metadata": json.dumps(candidate.metadata), "created_by": candidate.trained_by})
                    if row is None:
                        raise DemoError(f"parent {candidate.parent_id} of {candidate.artifact_id} does not exist")
                    db.execute(conn, "demo_insert_candidate_version", {
                        "artifact_id": candidate.artifact_id, "code_repo_url": REPO_URL,
                        "code_commit_sha": candidate.code_commit_sha, "code_entrypoint": "train.py",
                        "trained_by": candidate.trained_by,
                        "training_params": json.dumps(candidate.training_params),
                        "benchmark_id": candidate.metadata["benchmark_id"]})
                self.titles[candidate.artifact_id] = candidate.title
                inserted.append(candidate.artifact_id)
                weights = "" if (directory / WEIGHTS_FILE).exists() else "  (no weights.json: the export failed)"
                c.line(f"{candidate.label:<8} {candidate.artifact_id:<32} v{row['version_number']} "
                       f"of {candidate.parent_id}{weights}")
        return inserted

    def wait_for_verdicts(self, artifact_ids: Iterable[str]) -> None:
        """Poll gate_jobs until every watched artifact has a finished job, printing each change."""
        watched = list(artifact_ids)
        seen: dict[str, tuple] = {}
        deadline = time.monotonic() + self.timeout
        with db.connect(self.dsn, autocommit=True) as conn:
            while True:
                rows = {r["artifact_id"]: r for r in db.fetch_all(conn, "demo_gate_progress",
                                                                   {"artifact_ids": watched})}
                for artifact_id in watched:
                    row = rows.get(artifact_id)
                    if row is None:
                        continue
                    key = (row["job_id"], row["status"], row["attempt"])
                    if seen.get(artifact_id) == key:
                        continue
                    seen[artifact_id] = key
                    self._print_progress(artifact_id, row)
                finished = [a for a in watched if a in rows and rows[a]["status"] in ("done", "failed", "cancelled")]
                if len(finished) == len(watched):
                    return
                if self.daemon.exited() is not None:
                    raise DemoError(f"the daemon exited with status {self.daemon.exited()} before deciding:\n"
                                    + self.daemon.log_tail())
                if time.monotonic() > deadline:
                    waiting = ", ".join(a for a in watched if a not in finished)
                    raise DemoError(f"no verdict within {self.timeout:.0f} s for: {waiting}\n{self.daemon.log_tail()}")
                time.sleep(POLL_SECONDS)

    def _print_progress(self, artifact_id: str, row: Mapping[str, Any]) -> None:
        c = self.console
        label = self.labels.get(artifact_id, "")
        stamp = f"[{c.elapsed:5.1f}s]"
        if row["status"] == "running":
            c.raw(f"{stamp}   gating   {label:<8} {artifact_id}  (attempt {row['attempt']})")
        elif row["status"] == "done":
            c.raw(f"{stamp}   decided  {label:<8} {artifact_id}: {str(row['outcome']).upper()} "
                  f"({row['reason_code']})  {primary_text(row['primary_row'])}  in {row['seconds']:.1f}s")
        elif row["status"] in ("failed", "cancelled"):
            c.raw(f"{stamp}   {row['status']:<8} {label:<8} {artifact_id}: {row['error']}")
        elif row["status"] == "queued" and row["attempt"]:
            c.raw(f"{stamp}   retrying {label:<8} {artifact_id} after attempt {row['attempt']}: {row['error']}")

    # -------------------------------------------------------- verdicts --

    def collect_verdicts(self) -> tuple[list[Verdict], list[str]]:
        """Each gated version against its expected verdict, and any lineage without exactly one head."""
        expected = scenario.expected_verdicts()
        with db.connect(self.dsn, autocommit=True) as conn:
            rows = {r["artifact_id"]: r for r in db.fetch_all(conn, "demo_verdicts",
                                                               {"artifact_ids": list(expected)})}
            lineages = db.fetch_all(conn, "demo_lineage_heads", {"artifact_ids": list(expected)})
        verdicts = []
        for artifact_id, want in expected.items():
            row = rows.get(artifact_id, {})
            verdicts.append(Verdict(artifact_id, self.labels[artifact_id], row.get("title", artifact_id), want, row,
                                    problems(row, want)))
        lineage_problems = [f"lineage {lineage['lineage_id']} has {lineage['latest']} latest versions, not exactly one"
                            for lineage in lineages if lineage["latest"] != 1]
        return verdicts, lineage_problems

    def print_verdicts(self, verdicts: list[Verdict]) -> None:
        c = self.console
        resamples = sorted({v.result.get("n_resamples") for v in verdicts if v.result.get("seed") is not None})
        c.step("Verdicts (paired bootstrap over the same examples, "
               + "/".join(str(n) for n in resamples) + " resamples; delta = candidate - parent, 95% CI)")
        c.line("a lineage is one model's versions; its head (is_latest = 1) is the version in use")
        c.line("promotion_state is the gate's record (candidate, promoted, rejected, superseded);")
        c.line("lifecycle is the platform's state of the artifact (candidate, active, superseded)")
        c.raw("")
        for line in render_table(verdicts):
            c.raw("  " + line)
        c.raw("")
        c.raw("  Why:")
        for v in verdicts:
            c.raw(f"  {v.artifact_id}  ({v.title})")
            for line in explanation(v):
                c.raw(fit(line, "      ", "        "))
            for problem in v.problems:
                c.raw(f"      UNEXPECTED: {problem}")

    def print_lineage(self) -> None:
        with db.connect(self.dsn, autocommit=True) as conn:
            rows = db.fetch_all(conn, "demo_lineage_versions", {"lineage_id": scenario.AD_RISK})
        c = self.console
        c.step("The AD risk lineage now (promotion_state / lifecycle)")
        width = max(len(r["id"]) for r in rows) if rows else 0
        for r in rows:
            head = "  <- head (is_latest = 1)" if r["is_latest"] else ""
            c.line(f"v{r['version_number']}  {r['id']:<{width}}  {r['promotion_state']} / {r['lifecycle_state']}{head}")
            if r["superseded_by"]:
                c.line(f"      replaced by {r['superseded_by']}")

    def print_where_to_look(self) -> None:
        c = self.console
        home = self.paths.home
        c.step("Look further (the demo's database keeps running)")
        c.line(f"export {PREFIX}HOME={home}")
        c.line('model-eval-gate psql -c "SELECT artifact_id, promotion_state FROM model_versions"')
        c.line('model-eval-gate psql -c "SELECT id, artifact_id, assignee, title FROM tickets"')
        c.line("model-eval-gate status")
        log = f"${PREFIX}HOME/{self.paths.daemon_log.relative_to(home)}"
        if shutil.which("jq"):
            c.line(f"jq -c 'select(.event==\"verdict\")' \"{log}\"")
        else:  # no jq on this machine: the log is one JSON object per line, grep reads it too
            c.line(f"grep '\"event\": \"verdict\"' \"{log}\"")
        c.line(f"less \"${PREFIX}HOME/{self.paths.report.relative_to(home)}\"   (the WS1 migration report)")
        status = embedded.server_status(home)
        c.step(f"Left behind in {home}: {status.size_bytes / 1e6:.0f} MB, and the demo's PostgreSQL, running")
        c.line(f"stop it:       model-eval-gate demo --stop{self._home_flag()}")
        c.line(f"then, to free the space: rm -rf {home}")

    def print_web_address(self) -> None:
        from ..web.server import DEFAULT_PORT

        self.console.raw(f"See every verdict, the lineage and the queue in a browser (read-only):\n"
                         f"  {PREFIX}HOME={self.paths.home} model-eval-gate web\n"
                         f"  then open http://127.0.0.1:{DEFAULT_PORT}/")

    def _home_flag(self) -> str:
        return "" if self.paths.home == default_demo_home() else f" --home {self.paths.home}"

    # ------------------------------------------------------------ run --

    def run(self) -> int:
        c = self.console
        c.raw("model-eval-gate demo: the gate deciding real model versions, end to end")
        c.raw(f"  home        {self.paths.home}  ({PREFIX}HOME of every process the demo starts)")
        c.raw(f"  benchmarks  {self.paths.benchmarks}")
        c.raw(f"  models      {self.paths.artifact_root / 'models'}/<artifact id>/eval.py")
        c.raw(f"  daemon log  {self.paths.daemon_log}")
        if os.environ.get(PREFIX + "DSN"):
            c.raw(f"  ({PREFIX}DSN is set and ignored: the demo only ever uses its own embedded database)")
        previous = stop_previous_daemon(self.paths)
        if previous:
            c.raw(f"  (stopped daemon {previous}, left running by an interrupted earlier demo)")
        self.prepare_database()
        self.build_benchmarks_and_models()
        try:
            self.start_daemon()
            round_one = self.insert_candidates(1)
            c.step("Waiting for the daemon (it also gates the two ODE models the backfill left at candidate)")
            self.wait_for_verdicts([*scenario.ROOT_GATES, *round_one])
            round_two = self.insert_candidates(2)
            c.step("Waiting for the daemon")
            self.wait_for_verdicts(round_two)
        except KeyboardInterrupt:
            c.raw("\ninterrupted: stopping the daemon; the demo's database keeps running")
            raise
        finally:
            status = self.daemon.stop()
        c.step(f"Daemon stopped with SIGTERM (exit status {status if status is not None else 'none: it was killed'})")
        verdicts, lineage_problems = self.collect_verdicts()
        self.print_verdicts(verdicts)
        self.print_lineage()
        self.print_where_to_look()
        unexpected = [v for v in verdicts if not v.ok]
        failures = [f"the daemon exited with status {status}; see {self.paths.daemon_log}"] if status != 0 else []
        if unexpected:
            failures.append(f"{len(unexpected)} of {len(verdicts)} verdicts are not the expected ones: "
                            + ", ".join(v.artifact_id for v in unexpected))
        failures += lineage_problems
        if failures:
            c.raw("")
            for failure in failures:
                c.raw(f"FAILED: {failure}")
            return 1
        c.raw(f"\nAll {len(verdicts)} verdicts are the expected ones ({c.elapsed:.1f}s).")
        self.print_web_address()
        return 0


# ------------------------------------------------------------ entry points --

def _prepare_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    if os.geteuid() == 0:
        blocked = _first_closed_directory(home)
        if blocked is not None:
            raise DemoError(
                f"{blocked} is closed to other users (mode {oct(os.stat(blocked).st_mode & 0o777)}); as root the "
                f"embedded PostgreSQL runs as its own system user, which must reach {home}. Choose another "
                "directory with --home (e.g. one under /var/lib or /tmp)")


def _log_to_file(path: Path, level: str) -> None:
    from ..logging import configure_logging

    path.parent.mkdir(parents=True, exist_ok=True)
    configure_logging(level, stream=open(path, "a", buffering=1))  # noqa: SIM115 - lives as long as the run


def run_demo(home: Path | None = None, *, stream: TextIO = sys.stdout, timeout: float = DEFAULT_TIMEOUT_SECONDS,
             settings: Settings | None = None) -> int:
    """Run the whole demo in `home` (default: default_demo_home()); returns the exit status."""
    home = Path(home or default_demo_home()).expanduser().resolve()
    _prepare_home(home)
    paths = DemoPaths(home)
    base = settings or Settings.from_env()
    with open(paths.lock, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError(f"another demo is running in {home}") from None
        shutil.rmtree(paths.logs, ignore_errors=True)
        paths.logs.mkdir(mode=0o755)
        _log_to_file(paths.demo_log, base.log_level)
        return DemoRun(home, stream=stream, timeout=timeout, base_settings=base).run()


def stop_demo(home: Path | None = None, *, stream: TextIO = sys.stdout) -> int:
    """Stop the demo's daemon (if an interrupted run left one) and its embedded PostgreSQL."""
    home = Path(home or default_demo_home()).expanduser().resolve()
    paths = DemoPaths(home)
    if not home.is_dir():
        print(f"no demo in {home}", file=stream)
        return 0
    pid = stop_previous_daemon(paths)
    if pid:
        print(f"stopped the demo's daemon (pid {pid})", file=stream)
    stopped = embedded.stop_server(home)
    # The same words as `model-eval-gate db stop`.
    print(embedded.stopped_text(home / "pgdata", was_running=stopped), file=stream)
    return 0
