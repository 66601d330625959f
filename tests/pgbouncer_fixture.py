"""A real PgBouncer in front of the test server, for the pooler tests.

Debian's pgbouncer package (installed by .ci/run). Transaction pooling by
default: the mode in which LISTEN, session advisory locks and server-side
prepared statements stop working the way a direct connection has them.
Nothing here skips: without pgbouncer on PATH the tests fail.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg


@dataclass
class PgBouncer:
    host: str
    port: int
    directory: Path
    proc: subprocess.Popen

    def dsn(self, direct_dsn: str) -> str:
        """direct_dsn's database and user, through this PgBouncer."""
        info = psycopg.conninfo.conninfo_to_dict(direct_dsn)
        return psycopg.conninfo.make_conninfo(host=self.host, port=str(self.port), dbname=info["dbname"],
                                              user=info.get("user", "postgres"))

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def reload(self, *, pool_mode: str) -> None:
        """Switch the pooling mode the way an operator does: edit the ini file, SIGHUP."""
        import re
        import signal

        ini = self.directory / "pgbouncer.ini"
        ini.write_text(re.sub(r"(?m)^pool_mode = .*$", f"pool_mode = {pool_mode}", ini.read_text()))
        marker = len(self.log())
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "re-reading config" not in self.log()[marker:]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not log its reload:\n{self.log()[marker:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_pgbouncer(admin_dsn: str, *, pool_mode: str = "transaction", pool_size: int = 4) -> PgBouncer:
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (Debian package pgbouncer; .ci/run installs it)")
    server = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    socket_dir = server["host"]
    directory = Path(tempfile.mkdtemp(prefix="meg-pgbouncer-"))
    directory.chmod(0o755)
    port = _free_port()
    (directory / "userlist.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    (directory / "pgbouncer.ini").write_text(f"""[databases]
* = host={socket_dir} port={server.get("port", "5432")}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
server_check_delay = 0
""")
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; it runs as the owner of the
        # server's socket directory, who can reach the socket.
        owner = pwd.getpwuid(Path(socket_dir).stat().st_uid).pw_name
        for path in directory.iterdir():
            shutil.chown(path, user=owner)
        shutil.chown(directory, user=owner)
        command[1:1] = ["-u", owner]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    bouncer = PgBouncer("127.0.0.1", port, directory, proc)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {proc.stderr.read().decode()}\n{bouncer.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return bouncer
        except OSError:
            if time.monotonic() > deadline:
                bouncer.stop()
                raise RuntimeError(f"pgbouncer did not listen on {port} within 15 s\n{bouncer.log()}") from None
            time.sleep(0.1)
