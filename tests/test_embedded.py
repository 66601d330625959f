"""The embedded PostgreSQL: it changes no permission outside its home, runs as an
unprivileged user without a login shell when started as root, says when it creates
or starts a server, and `db status`, `db stop`, `psql` manage it. Real servers,
both as root and as an unprivileged user (each test asserts what its mode must do).
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from model_eval_gate import embedded

REPO = Path(__file__).resolve().parents[1]
AS_ROOT = os.geteuid() == 0


def run_cli(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env["PYTHONPATH"] = str(REPO / "daemon")
    env.update(environment)
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def scratch():
    """A directory for homes; removed (servers stopped) afterwards."""
    root = Path(tempfile.mkdtemp(prefix="meg-embedded-"))
    root.chmod(0o755)
    homes: list[Path] = []
    yield root, homes
    for home in homes:
        embedded.stop_server(home)
    shutil.rmtree(root, ignore_errors=True)


def directory_modes(trees: list[Path], places: list[Path]) -> dict[str, int]:
    """The mode of every ancestor of each tree and place, and of every directory in each tree."""
    modes = {}
    for root in [*trees, *places]:
        for ancestor in [*root.resolve().parents, root.resolve()]:
            modes[str(ancestor)] = ancestor.stat().st_mode
    for root in trees:
        for directory, subdirs, _ in os.walk(root):
            for name in subdirs:
                path = os.path.join(directory, name)
                modes[path] = os.lstat(path).st_mode
    return modes


def test_starting_the_server_changes_no_mode_outside_its_home_and_says_what_it_does(scratch, capsys):
    root, homes = scratch
    home = root / "home"
    homes.append(home)
    bundled = embedded.bundled_bin_dir().parent  # pginstall
    trees = [t for t in (bundled, bundled.parent.parent / "pgserver.libs", Path(sys.prefix)) if t.exists()]
    places = [p for p in (Path.home(), Path("/tmp"), Path("/var/lib"), root) if p.exists()]
    before = directory_modes(trees, places)

    server = embedded.ensure_server(home)
    said = capsys.readouterr().err
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert f"creating an embedded PostgreSQL in {home / 'pgdata'}" in said
    assert f"starting the embedded PostgreSQL in {home / 'pgdata'}" in said and "model-eval-gate db stop" in said

    embedded.ensure_server(home)  # running already: reused, nothing said
    assert capsys.readouterr().err == ""
    assert embedded.stop_server(home) is True
    embedded.ensure_server(home)  # stopped: started again, and said so
    again = capsys.readouterr().err
    assert "starting the embedded PostgreSQL" in again and "creating" not in again

    after = directory_modes(trees, places)
    changed = {path: (oct(before[path]), oct(after[path])) for path in before if before[path] != after.get(path)}
    assert changed == {}, changed

    status = embedded.server_status(home)
    assert status.running and status.initialised
    if AS_ROOT:
        # A dedicated system user without a login shell, never root and never pgserver's `pgserver` login.
        assert status.owner == embedded.SYSTEM_USER
        assert pwd.getpwnam(embedded.SYSTEM_USER).pw_shell in embedded.NOLOGIN_SHELLS
    else:
        assert status.owner == pwd.getpwuid(os.getuid()).pw_name


def test_a_home_behind_a_closed_directory(scratch):
    root, homes = scratch
    closed = root / "closed"
    closed.mkdir(mode=0o700)
    home = closed / "home"
    homes.append(home)
    if AS_ROOT:
        # The server's user could not reach it: refused, and the directory stays closed.
        with pytest.raises(embedded.EmbeddedDatabaseError) as refused:
            embedded.ensure_server(home)
        message = str(refused.value)
        assert str(closed) in message and "mode 700" in message and "MODEL_EVAL_GATE_HOME" in message
        assert not (home / "pgdata" / "PG_VERSION").exists()
    else:
        # The server runs as this user, who may enter it: it simply works.
        with psycopg.connect(embedded.ensure_server(home).dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert oct(closed.stat().st_mode & 0o777) == "0o700"


def test_binaries_out_of_the_servers_reach_are_copied_into_the_home_not_opened_up(scratch, capsys):
    # A virtualenv under root's 0700 home: its bundled PostgreSQL is out of reach of
    # the server's user. The layout of the wheel is kept (binaries find their
    # libraries at $ORIGIN/../../../pgserver.libs).
    root, homes = scratch
    closed = root / "root-home"
    closed.mkdir(mode=0o700)
    site = closed / "site-packages"
    bundled = embedded.bundled_bin_dir().parent
    shutil.copytree(bundled, site / "pgserver" / "pginstall", symlinks=True)
    if (bundled.parent.parent / "pgserver.libs").is_dir():
        shutil.copytree(bundled.parent.parent / "pgserver.libs", site / "pgserver.libs", symlinks=True)
    home = root / "home"
    homes.append(home)

    server = embedded.ensure_server(home, source_bin=site / "pgserver" / "pginstall" / "bin")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # the copy is complete: pgvector loads
    said = capsys.readouterr().err
    if AS_ROOT:
        assert server.bin_dir.is_relative_to(home) and "copying it into" in said
    else:
        assert server.bin_dir == site / "pgserver" / "pginstall" / "bin" and "copying" not in said
    assert oct(closed.stat().st_mode & 0o777) == "0o700"


def test_db_status_stop_and_psql_on_the_embedded_default(scratch):
    root, homes = scratch
    home = root / "home"
    homes.append(home)
    env = {"MODEL_EVAL_GATE_HOME": str(home)}

    absent = run_cli("db", "status", **env)
    assert absent.returncode == 3 and "not created yet" in absent.stdout
    assert not (home / "pgdata").exists()  # status starts nothing

    migrated = run_cli("migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"creating an embedded PostgreSQL in {home / 'pgdata'}" in migrated.stderr

    status = run_cli("db", "status", **env)
    assert status.returncode == 0, status.stderr
    assert "running (pid" in status.stdout and "model-eval-gate db stop" in status.stdout
    url = run_cli("db", "url", **env).stdout.strip()
    assert url == run_cli("db-url", **env).stdout.strip() and url in status.stdout

    queried = run_cli("psql", "-tA", "-c", "SELECT count(*) FROM model_eval_gate_migrations", **env)
    assert queried.returncode == 0, queried.stderr
    assert int(queried.stdout.strip()) >= 7

    stopped = run_cli("db", "stop", **env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped the embedded PostgreSQL in {home / 'pgdata'}"
    assert run_cli("db", "status", **env).returncode == 3
    again = run_cli("db", "stop", **env)
    assert again.stdout.strip() == f"the embedded PostgreSQL in {home / 'pgdata'} was not running"

    refused = run_cli("db", "stop", MODEL_EVAL_GATE_DSN="postgresql://x@db.example.invalid/y", **env)
    assert refused.returncode == 2 and refused.stderr.startswith("refused: MODEL_EVAL_GATE_DSN is set")
