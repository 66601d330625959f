"""The built wheel works outside the checkout: it carries sql/ and schemas/, and `migrate` runs from it."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*command, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def outside_environment(**extra: str) -> dict:
    # Nothing that could point back into the checkout or at another database.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("MODEL_EVAL_GATE_")}
    env.update(extra)
    return env


@pytest.mark.slow
def test_the_wheel_installs_outside_the_checkout_and_migrates(tmp_path, empty_dsn):
    wheelhouse = tmp_path / "wheelhouse"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", wheelhouse, REPO, cwd=tmp_path)
    [wheel] = wheelhouse.glob("model_eval_gate-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path,
        env=outside_environment())

    # The test environment's dependencies, without the network: a plain path
    # line, so .pth files there (an editable install of this checkout) are not
    # processed and model_eval_gate can only come from the wheel.
    site_packages = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                             cwd=tmp_path, env=outside_environment()).stdout.strip())
    assert site_packages.is_relative_to(venv)
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "test_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(dependencies)))

    located = run(python, "-c", "import model_eval_gate, sys; print(model_eval_gate.__file__)",
                  cwd=tmp_path, env=outside_environment()).stdout.strip()
    package = Path(located).parent
    assert package.is_relative_to(venv), located
    assert not package.is_relative_to(REPO)
    assert (package / "sql" / "migrations" / "0001_host_schema.sql").is_file()
    assert (package / "sql" / "queries" / "catalog.sql").is_file()
    assert (package / "schemas" / "model_artifact_metadata.json").is_file()
    assert (package / "demo" / "legacy_artifacts.json").is_file()
    shipped = sorted(p.name for p in (package / "sql" / "migrations").glob("*.sql"))
    assert shipped == sorted(p.name for p in (REPO / "sql" / "migrations").glob("*.sql"))
    resolved = run(python, "-c", "from model_eval_gate.resources import sql_dir, schemas_dir; "
                                 "print(sql_dir()); print(schemas_dir())",
                   cwd=tmp_path, env=outside_environment()).stdout.split()
    assert [Path(p) for p in resolved] == [package / "sql", package / "schemas"]

    migrated = run(venv / "bin" / "model-eval-gate", "migrate", cwd=tmp_path,
                   env=outside_environment(MODEL_EVAL_GATE_DSN=empty_dsn))
    assert "0001_host_schema.sql" in migrated.stdout
    with psycopg.connect(empty_dsn) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = [row[0] for row in conn.execute("SELECT version FROM model_eval_gate_migrations ORDER BY version")]
    assert {"artifacts", "universal_artifacts", "model_versions", "gate_jobs", "eval_results", "tool_calls",
            "model_backfill_log", "model_review_items"} <= tables
    assert versions == sorted(int(name[:4]) for name in shipped if not name.endswith(".down.sql"))
