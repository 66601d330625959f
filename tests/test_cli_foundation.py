"""The real console entry (`python -m model_eval_gate.cli`) for migrate, register, backfill and db-url."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from model_eval_gate import embedded

REPO = Path(__file__).resolve().parents[1]

GOOD_REGISTRATION = {
    "artifact_id": "model-cli-1",
    "title": "AD Risk Prediction Model v2",
    "metadata": {
        "model_family": "logistic_regression",
        "framework": "scikit-learn",
        "parameter_count": 24,
        "training_data": "ADNI baseline cohort",
        "evaluation_dataset": "ADNI 20% holdout",
        "evaluation_metrics": {"auroc": 0.83},
    },
}


def run_cli(*args: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess with only the MODEL_EVAL_GATE_* variables given here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env["PYTHONPATH"] = str(REPO / "daemon")
    env.update(environment)
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def row_counts(conn) -> dict[str, int]:
    tables = [r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
    return {t: conn.execute(f'SELECT count(*) AS n FROM "{t}"').fetchone()["n"] for t in tables}


@pytest.fixture
def fresh_home():
    # Not pytest's tmp_path (0700): as root, the embedded server runs as its
    # own system user, which must be able to reach the data directory.
    home = Path(tempfile.mkdtemp(prefix="meg-cli-home-"))
    home.chmod(0o755)
    yield home
    embedded.stop_server(home)
    shutil.rmtree(home, ignore_errors=True)


# -------------------------------------------------------------- register --

def test_register_prints_the_new_id(conn, dsn, tmp_path):
    from benchmark_factory import make_benchmark, write_eval_py

    benchmark = make_benchmark(tmp_path / "benchmarks", task="binary", n=60)  # at least 20 of each class: registration refuses fewer for auroc
    recorded = run_cli("benchmark", "add", str(benchmark), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert recorded.returncode == 0, recorded.stderr
    benchmark_id = recorded.stdout.split()[2].rstrip(":")
    write_eval_py(tmp_path / "artifacts" / "models" / "model-cli-1")
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**GOOD_REGISTRATION, "benchmark_id": benchmark_id}))
    result = run_cli("register", str(path), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn,
                     MODEL_EVAL_GATE_ARTIFACT_ROOT=str(tmp_path / "artifacts"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "model-cli-1" and "warning" not in result.stderr
    row = conn.execute("SELECT promotion_state FROM model_versions WHERE artifact_id = 'model-cli-1'").fetchone()
    assert row == {"promotion_state": "candidate"}


def test_register_refuses_a_candidate_whose_gate_would_fail_at_once_unless_forced(conn, dsn, tmp_path):
    # A running daemon gates a candidate as soon as it is registered: without its
    # eval.py in place, or with a benchmark nobody recorded, that is an error verdict.
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**GOOD_REGISTRATION, "benchmark_id": "no-such-benchmark"}))
    env = dict(MODEL_EVAL_GATE_DSN=dsn, MODEL_EVAL_GATE_ARTIFACT_ROOT=str(tmp_path / "artifacts"))
    before = row_counts(conn)
    refused = run_cli("register", str(path), cwd=tmp_path, **env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "Traceback" not in refused.stderr
    assert f"no eval.py in {tmp_path / 'artifacts' / 'models' / 'model-cli-1'}" in refused.stderr
    assert "benchmark no-such-benchmark is not recorded" in refused.stderr and "benchmark add" in refused.stderr
    assert row_counts(conn) == before

    without_id = tmp_path / "anonymous.json"
    without_id.write_text(json.dumps({k: v for k, v in GOOD_REGISTRATION.items() if k != "artifact_id"}))
    anonymous = run_cli("register", str(without_id), cwd=tmp_path, **env)
    assert anonymous.returncode == 2 and "has no artifact_id" in anonymous.stderr
    assert "no benchmark_id, and the parent names none" in anonymous.stderr

    forced = run_cli("register", "--force", str(path), cwd=tmp_path, **env)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "model-cli-1"
    assert "warning: no eval.py in" in forced.stderr and "model-eval-gate regate model-cli-1" in forced.stderr


def test_register_refuses_bad_metadata_with_exit_2_and_every_violation(conn, dsn, tmp_path):
    payload = json.loads(json.dumps(GOOD_REGISTRATION))
    payload["metadata"].update(parameter_count=-1, is_external=True)
    del payload["metadata"]["framework"]
    payload["code_commit_sha"] = "main"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    before = row_counts(conn)
    result = run_cli("register", str(path), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert result.returncode == 2
    assert result.stdout == ""
    for path_text in ("$.code_commit_sha", "$.metadata.framework", "$.metadata.parameter_count",
                      "$.metadata.external_source_url", "$.metadata.external_source_version"):
        assert f"{path_text}: " in result.stderr, result.stderr
    after = row_counts(conn)
    assert after.pop("tool_calls") == before.pop("tool_calls") + 1
    assert after == before


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b'{"title": NaN}', "not a finite number"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[1, 2]", "must be a JSON object"),
])
def test_register_refuses_files_that_are_not_a_registration(dsn, tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_bytes(content)
    result = run_cli("register", str(path), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["missing.json", "."])
def test_register_reports_a_file_it_cannot_read(dsn, tmp_path, name):
    result = run_cli("register", name, cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cannot read {name}: ") and "Traceback" not in result.stderr


# ------------------------------------------------- migrate, backfill, db-url --

def test_migrate_and_backfill_on_the_embedded_default(fresh_home, tmp_path):
    psql = shutil.which("psql")
    assert psql, "psql is needed to prove db-url prints a DSN psql accepts"
    home = {"MODEL_EVAL_GATE_HOME": str(fresh_home)}

    migrated = run_cli("migrate", cwd=tmp_path, **home)
    assert migrated.returncode == 0, migrated.stderr
    assert "0001_host_schema.sql" in migrated.stdout
    filled = run_cli("backfill", cwd=tmp_path, **home)
    assert filled.returncode == 0, filled.stderr
    assert (fresh_home / "pgdata" / "postmaster.pid").exists()

    report = fresh_home / "reports" / "migration_report_ws1.md"  # in the home, not the working directory
    assert f"migration report: {report}" in filled.stdout.splitlines()
    assert not (tmp_path / "docs").exists()
    assert "adopted 8 legacy model artifact(s)" in filled.stdout
    assert report.stat().st_size >= 2048

    url = run_cli("db-url", cwd=tmp_path, **home)
    assert url.returncode == 0, url.stderr
    dsn = url.stdout.strip()
    counted = subprocess.run([psql, dsn, "-tA", "-c", "select count(*) from model_versions"],
                             capture_output=True, text=True, timeout=60)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "8"

    again = run_cli("migrate", cwd=tmp_path, **home)
    assert again.returncode == 0 and again.stdout.strip() == "database is up to date"


def test_db_url_with_a_dsn_prints_it_and_starts_nothing(fresh_home, tmp_path):
    dsn = "postgresql://someone@db.example.invalid:5432/models"
    result = run_cli("db-url", cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn, MODEL_EVAL_GATE_HOME=str(fresh_home))
    assert result.returncode == 0, result.stderr
    assert result.stdout == dsn + "\n"
    assert not (fresh_home / "pgdata").exists()
    assert list(fresh_home.iterdir()) == []


def test_an_unreachable_database_is_a_one_line_error_with_exit_1(tmp_path):
    result = run_cli("migrate", cwd=tmp_path, MODEL_EVAL_GATE_DSN=f"postgresql://postgres@/x?host={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_a_bad_setting_is_exit_2(tmp_path):
    result = run_cli("db-url", cwd=tmp_path, MODEL_EVAL_GATE_WORKERS="many")
    assert result.returncode == 2
    assert "MODEL_EVAL_GATE_WORKERS='many'" in result.stderr


def test_backfill_on_a_host_database_loads_the_legacy_fixture_only_when_asked(conn, dsn, tmp_path):
    report = tmp_path / "report.md"
    plain = run_cli("backfill", "--report", str(report), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert plain.returncode == 0, plain.stderr
    assert "adopted 0 legacy model artifact(s)" in plain.stdout
    assert conn.execute("SELECT count(*) AS n FROM model_versions").fetchone()["n"] == 0
    seeded = run_cli("backfill", "--legacy-fixture", "--report", str(report), cwd=tmp_path, MODEL_EVAL_GATE_DSN=dsn)
    assert seeded.returncode == 0, seeded.stderr
    assert f"migration report: {report}" in seeded.stdout.splitlines()
    assert conn.execute("SELECT count(*) AS n FROM model_versions").fetchone()["n"] == 8


def test_register_model_from_python_warns_when_its_gate_can_only_fail(conn, dsn, tmp_path):
    import structlog

    from model_eval_gate.catalog import register_model
    from model_eval_gate.config import Settings

    settings = Settings(dsn=dsn, home=tmp_path / "home", artifact_root=tmp_path / "artifacts")
    with structlog.testing.capture_logs() as logs:
        assert register_model({**GOOD_REGISTRATION, "benchmark_id": "nowhere"}, settings=settings) == "model-cli-1"
    warned = [e for e in logs if e["event"] == "registered_gate_will_fail"]
    assert [w["log_level"] for w in warned] == ["warning", "warning"]
    assert "no eval.py in" in warned[0]["problem"] and "benchmark nowhere is not recorded" in warned[1]["problem"]
