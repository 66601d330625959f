"""A private PostgreSQL with pgvector for the default, zero-set-up deployment.

pgserver ships PostgreSQL binaries with pgvector in a wheel; this module only
uses those binaries (initdb, pg_ctl, psql) and runs the server itself:

- in `<home>/pgdata`, listening on a Unix socket only (no TCP port to collide
  with or expose), left running when this process exits so that later
  commands (`db url`, `psql`, another daemon) reuse it; `model-eval-gate db
  stop` stops it;
- never changing a permission outside `<home>`. pgserver's own start-up, as
  root, adds g+rx,o+rx to every parent of the data directory and of its
  binaries (turning a 0700 /root into 0755) and creates a `pgserver` login
  account. Here, as root, the server runs as the dedicated system user
  `model-eval-gate` (no login shell; the systemd unit's user), the home's
  parents must already be traversable (refused with a clear message
  otherwise), and when the bundled binaries are out of that user's reach
  (a virtualenv under /root) they are copied into `<home>/postgresql`;
- saying so when it creates a database or starts a server (on stderr), so
  that a second embedded server never appears silently.
"""
from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE = "model_eval_gate"
SYSTEM_USER = "model-eval-gate"  # as root, the server runs as this user (as the systemd unit does)
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
START_TIMEOUT_SECONDS = 60
# sun_path holds 108 bytes with its NUL; PostgreSQL names the socket .s.PGSQL.5432.
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.5432")

# platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset
# (systemd services, CI); nothing here uses the runtime directory.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started (the message says why and what to do)."""


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: Path
    bin_dir: Path

    def dsn(self, database: str = DATABASE) -> str:
        # A libpq URI with the socket directory as host: psql, psycopg and
        # every libpq client accept it.
        return f"postgresql://postgres@/{quote(database)}?host={quote(str(self.socket_dir), safe='/')}"


@dataclass(frozen=True)
class ServerStatus:
    pgdata: Path
    initialised: bool  # a database cluster exists in pgdata
    running: bool
    pid: int | None
    socket_dir: Path | None
    owner: str | None  # the system user the server runs as
    size_bytes: int  # of pgdata

    def dsn(self, database: str = DATABASE) -> str | None:
        if not self.running or self.socket_dir is None:
            return None
        return EmbeddedServer(self.pgdata, self.socket_dir, Path()).dsn(database)


def _announce(text: str) -> None:
    """A notice for the person or the journal; stdout stays for command results."""
    print(f"model-eval-gate: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------- binaries --

def bundled_bin_dir() -> Path:
    """pgserver's PostgreSQL binaries (importing pgserver.__init__ has side effects, so find them by path)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a hard dependency
        raise EmbeddedDatabaseError(
            "the embedded database needs the pgserver package; install model-eval-gate with its "
            "dependencies, or set MODEL_EVAL_GATE_DSN to use an existing PostgreSQL")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _can_enter(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may traverse directory path (permission bits only; root's view of another user)."""
    try:
        info = path.stat()
    except OSError:
        return False
    if info.st_uid == user.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    groups = {user.pw_gid, *(g.gr_gid for g in _groups_of(user))}
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _groups_of(user: pwd.struct_passwd):
    import grp

    return [g for g in grp.getgrall() if user.pw_name in g.gr_mem]


def first_closed_parent(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to path (path included) that user cannot enter, or None."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        if directory.exists() and not _can_enter(directory, user):
            return directory
    return None


def _readable_tree(root: Path, user: pwd.struct_passwd) -> bool:
    if first_closed_parent(root, user) is not None:
        return False
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            if not _can_enter(Path(directory) / name, user):
                return False
        for name in files:
            mode = (Path(directory) / name).stat().st_mode
            if not mode & stat.S_IROTH:
                return False
    return True


def _install_for(home: Path, user: pwd.struct_passwd | None, source_bin: Path | None = None) -> Path:
    """The bin directory the server user can run: the bundled one, or a copy inside home."""
    source_bin = source_bin or bundled_bin_dir()
    if user is None:  # not root: the server runs as us, and we run from wherever we were installed
        return source_bin
    install = source_bin.parent  # pginstall: bin, lib, share
    # The wheel's binaries find their shared libraries at $ORIGIN/../../../pgserver.libs.
    libs = install.parent.parent / "pgserver.libs"
    parts = [install] + ([libs] if libs.is_dir() else [])
    if all(_readable_tree(part, user) for part in parts):
        return source_bin
    copy = home / "postgresql"
    stamp = copy / ".copied-from"
    origin = "".join(f"{part} {part.stat().st_mtime_ns}\n" for part in parts)
    if not (stamp.exists() and stamp.read_text() == origin):
        _announce(f"the bundled PostgreSQL in {install} is out of reach of the system user {user.pw_name} "
                  f"(a directory on the way is closed to other users); copying it into {copy}")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(install, copy / "pgserver" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, copy / "pgserver.libs", symlinks=True)
        for directory, _, files in os.walk(copy):
            os.chmod(directory, 0o755)
            for name in files:
                path = Path(directory) / name
                if not path.is_symlink():
                    path.chmod(0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
        stamp.write_text(origin)
    return copy / "pgserver" / "pginstall" / "bin"


# ------------------------------------------------------------ server user --

def _server_user(pgdata: Path) -> pwd.struct_passwd | None:
    """As root: the unprivileged user the server runs as (None when we are not root: it runs as us).

    An existing data directory keeps its owner (one made by pgserver belongs
    to its `pgserver` user); a new one belongs to SYSTEM_USER, created as a
    system account without a login shell when missing.
    """
    if os.geteuid() != 0:
        return None
    if (pgdata / "PG_VERSION").exists():
        owner = pgdata.stat().st_uid
        if owner != 0:
            return pwd.getpwuid(owner)
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    shell = next((s for s in NOLOGIN_SHELLS if os.path.exists(s)), "/usr/sbin/nologin")
    created = subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                              "--home-dir", "/nonexistent", "--shell", shell, SYSTEM_USER],
                             capture_output=True, text=True)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise EmbeddedDatabaseError(
            f"as root, the embedded PostgreSQL runs as the system user {SYSTEM_USER}, which could not be "
            f"created ({' '.join(created.stderr.split()) or 'useradd failed'}); create it with: useradd "
            f"--system --user-group --shell /usr/sbin/nologin {SYSTEM_USER}, or set MODEL_EVAL_GATE_DSN")
    _announce(f"created the system user {SYSTEM_USER} (no login shell) to run the embedded PostgreSQL")
    return pwd.getpwnam(SYSTEM_USER)


def _run_as(user: pwd.struct_passwd | None, command: list[str], *, timeout: float, cwd: Path) -> \
        subprocess.CompletedProcess:
    kwargs = {}
    if user is not None:
        kwargs = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[], umask=0o077)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "HOME": str(cwd) if user is not None else os.environ.get("HOME", str(cwd))}
    # Output goes to files, not pipes: pg_ctl start leaves the postmaster
    # holding its stdout, and a pipe would never reach end-of-file.
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        try:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=cwd, env=env, timeout=timeout, text=True, **kwargs)
        except subprocess.TimeoutExpired:
            out.seek(0)
            return subprocess.CompletedProcess(command, -1, out.read() + f"\n(timed out after {timeout:.0f} s)")
        out.seek(0)
        return subprocess.CompletedProcess(command, done.returncode, out.read())


# ----------------------------------------------------------------- status --

def _postmaster(pgdata: Path) -> tuple[int, Path | None, str] | None:
    """(pid, socket dir, status) from postmaster.pid when its process is alive, else None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
    state = lines[7].strip() if len(lines) > 7 else ""
    return pid, socket_dir, state


def _size(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def server_status(home: Path) -> ServerStatus:
    """What is in home/pgdata, without starting anything."""
    pgdata = (Path(home) / "pgdata").expanduser().resolve()
    found = _postmaster(pgdata)
    owner = None
    if pgdata.exists():
        try:
            owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
        except KeyError:
            owner = str(pgdata.stat().st_uid)
    return ServerStatus(pgdata=pgdata, initialised=(pgdata / "PG_VERSION").exists(), running=found is not None,
                        pid=found[0] if found else None, socket_dir=found[1] if found else None, owner=owner,
                        size_bytes=_size(Path(home).expanduser()) if Path(home).expanduser().exists() else 0)


# ------------------------------------------------------------------ start --

def _socket_dir(pgdata: Path, user: pwd.struct_passwd | None) -> Path:
    """pgdata itself when the socket's path fits in sun_path; else a short directory under /tmp."""
    if len(str(pgdata)) <= _MAX_SOCKET_DIR:
        return pgdata
    import hashlib

    short = Path("/tmp") / f"model-eval-gate-{hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]}"
    short.mkdir(mode=0o755, exist_ok=True)
    if user is not None:
        os.chown(short, user.pw_uid, user.pw_gid)
    return short


def _prepare_home(home: Path, pgdata: Path, user: pwd.struct_passwd | None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    if user is None:
        pgdata.mkdir(mode=0o700, exist_ok=True)
        return
    closed = first_closed_parent(home, user)
    if closed is not None:
        mode = oct(closed.stat().st_mode & 0o777)
        raise EmbeddedDatabaseError(
            f"as root, the embedded PostgreSQL runs as the system user {user.pw_name}, which cannot enter "
            f"{closed} (mode {mode[2:]}) on the way to {home}; model-eval-gate changes no permission outside "
            f"its home. Use a home other users can reach (unset MODEL_EVAL_GATE_HOME for "
            f"/var/lib/model-eval-gate), or set MODEL_EVAL_GATE_DSN")
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if pgdata.stat().st_uid != user.pw_uid:
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    pgdata.chmod(0o700)


def _installed_bin_dir(home: Path, source_bin: Path | None) -> Path:
    """The binaries a running server of home was started from (the copy in home, if one was made)."""
    copy = home / "postgresql" / "pgserver" / "pginstall" / "bin"
    return copy if copy.is_dir() and source_bin is None else (source_bin or bundled_bin_dir())


def _start(home: Path, pgdata: Path, source_bin: Path | None) -> EmbeddedServer:
    running = _postmaster(pgdata)
    if running is not None and running[1] is not None and running[2] == "ready":
        return EmbeddedServer(pgdata, running[1], _installed_bin_dir(home, source_bin))
    user = _server_user(pgdata)
    _prepare_home(home, pgdata, user)
    bin_dir = _install_for(home, user, source_bin)
    as_whom = f" as the system user {user.pw_name}" if user is not None else ""
    if not (pgdata / "PG_VERSION").exists():
        _announce(f"no database in {home} yet: creating an embedded PostgreSQL in {pgdata}{as_whom} "
                  "(MODEL_EVAL_GATE_HOME chooses another place, MODEL_EVAL_GATE_DSN an existing server)")
        done = _run_as(user, [str(bin_dir / "initdb"), "-D", str(pgdata), "--auth=trust", "--auth-local=trust",
                              "--encoding=utf8", "-U", "postgres"], timeout=120, cwd=pgdata)
        if done.returncode != 0:
            raise EmbeddedDatabaseError(f"could not create the embedded PostgreSQL in {pgdata}: "
                                        + _tail(done.stdout))
    if running is None:
        _announce(f"starting the embedded PostgreSQL in {pgdata}{as_whom}; it keeps running after this "
                  "command (`model-eval-gate db stop` stops it)")
        socket_dir = _socket_dir(pgdata, user)
        done = _run_as(user, [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", str(START_TIMEOUT_SECONDS),
                              "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"],
                       timeout=START_TIMEOUT_SECONDS + 15, cwd=pgdata)
        if done.returncode != 0:
            raise EmbeddedDatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: "
                                        f"{_tail(done.stdout)} (server log: {pgdata / 'log'})")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:  # another process may be starting it right now
        running = _postmaster(pgdata)
        if running is not None and running[1] is not None and running[2] == "ready":
            return EmbeddedServer(pgdata, running[1], bin_dir)
        if time.monotonic() > deadline:
            raise EmbeddedDatabaseError(f"the embedded PostgreSQL in {pgdata} did not become ready within "
                                        f"{START_TIMEOUT_SECONDS} s (server log: {pgdata / 'log'})")
        time.sleep(0.1)


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept) or "no output"


class _HomeLock:
    """One process at a time creates or starts the server of a home (a flock in the home itself)."""

    def __init__(self, home: Path):
        self.path = home / ".embedded.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()


def ensure_server(home: Path, *, source_bin: Path | None = None) -> EmbeddedServer:
    """Start (or reuse) the server in home/pgdata and make sure our database exists.

    source_bin: the PostgreSQL binaries to use (default: pgserver's bundled ones).
    """
    import psycopg

    home = Path(home).expanduser().resolve()
    pgdata = home / "pgdata"
    try:
        with _HomeLock(home):
            server = _start(home, pgdata, source_bin)
    except PermissionError as exc:
        raise EmbeddedDatabaseError(f"cannot set up the embedded PostgreSQL in {home}: {exc.strerror}: "
                                    f"{exc.filename} (choose another MODEL_EVAL_GATE_HOME)") from exc
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between our check and now
    return server


# ------------------------------------------------------------- stop, restart --

def _pg_ctl(home: Path, action: list[str]) -> subprocess.CompletedProcess:
    pgdata = (Path(home) / "pgdata").expanduser().resolve()
    user = None
    if os.geteuid() == 0 and pgdata.stat().st_uid != 0:
        user = pwd.getpwuid(pgdata.stat().st_uid)
    bin_dir = _installed_bin_dir(Path(home), None)
    return _run_as(user, [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", *action],
                   timeout=90, cwd=pgdata)


def stop_server(home: Path) -> bool:
    """Stop the embedded server of home; True if one was running."""
    home = Path(home).expanduser().resolve()
    if _postmaster(home / "pgdata") is None:
        return False
    done = _pg_ctl(home, ["-m", "fast", "stop"])
    if done.returncode != 0 and _postmaster(home / "pgdata") is not None:
        raise EmbeddedDatabaseError(f"could not stop the embedded PostgreSQL in {home / 'pgdata'}: {_tail(done.stdout)}")
    return True


def restart_server(home: Path) -> None:
    """Restart the embedded server in place (recovery tests use this)."""
    home = Path(home).expanduser().resolve()
    status = server_status(home)
    done = _pg_ctl(home, ["-m", "fast", "-o", '-h ""', "-o", f"-k {status.socket_dir or home / 'pgdata'}",
                          "-l", str(home / "pgdata" / "log"), "restart"])
    if done.returncode != 0:
        raise EmbeddedDatabaseError(f"could not restart the embedded PostgreSQL in {home / 'pgdata'}: "
                                    f"{_tail(done.stdout)}")


def stopped_text(pgdata: Path, *, was_running: bool) -> str:
    """The words `db stop` and `demo --stop` both say."""
    return (f"stopped the embedded PostgreSQL in {pgdata}" if was_running
            else f"the embedded PostgreSQL in {pgdata} was not running")
