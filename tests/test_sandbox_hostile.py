"""Hostile eval.py files against the real bubblewrap sandbox.

Each run must end as a clear recorded error (ok=False with a reason) or a
contained, harmless success whose script reports that its attack failed; the
pytest process survives; and nothing outside /out changes (a snapshot of the
whole test tree, labels and sentinel secret included, is compared after every
run by the `hostile` fixture).
"""
from __future__ import annotations

import dataclasses
import errno
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hostile.harness import (
    ISOLATED_UID,
    LABEL_TOKEN,
    SENTINEL_TOKEN,
    TIGHT_LIMITS,
    make_layout,
    observations,
    processes_with,
    require_bubblewrap,
    snapshot,
)
from model_eval_gate.sandbox import (
    SandboxOutputError,
    discard_output,
    read_output_file,
    run_eval_py,
)

ROOT_MODE = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _bubblewrap_present():
    require_bubblewrap()


@pytest.fixture
def hostile(tmp_path):
    """Run an eval.py body in the sandbox; afterwards assert nothing outside /out changed."""
    runs = []

    def run(body, *, limits=TIGHT_LIMITS, argv_extra=(), prepare=None):
        layout = make_layout(tmp_path / f"case{len(runs)}", body)
        if prepare is not None:
            prepare(layout)
        before = snapshot(tmp_path, exclude=layout.work_dir)
        result = run_eval_py(
            layout.model_dir, layout.split_dir, limits=limits, work_dir=layout.work_dir, argv_extra=argv_extra,
            sandbox_uid=ISOLATED_UID, sandbox_gid=ISOLATED_UID,
        )
        runs.append(result)
        assert snapshot(tmp_path, exclude=layout.work_dir) == before, "a file outside /out changed"
        return result, layout

    yield run
    for result in runs:
        discard_output(result.out_dir)
        assert not os.path.exists(result.out_dir)


def _assert_secrets_absent(result):
    for text in (result.stdout, result.stderr):
        assert LABEL_TOKEN not in text
        assert SENTINEL_TOKEN not in text


# --- network -------------------------------------------------------------------


@pytest.fixture
def postgres_port_listener():
    """A real listener on 127.0.0.1:5432 (or the server already there), reachable from the host."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", 5432))
        listener.listen(8)
        listener.setblocking(False)
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE, exc
        listener.close()
        listener = None
    with socket.create_connection(("127.0.0.1", 5432), timeout=2):
        pass  # the host side can reach it: only the sandbox must not
    if listener is not None:
        listener.accept()[0].close()  # the host's own probe
    yield listener
    if listener is not None:
        listener.close()


def _host_address() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; this picks the outgoing interface
        return probe.getsockname()[0]
    except OSError:
        return "10.0.0.1"
    finally:
        probe.close()


def test_network_is_unreachable_from_the_sandbox(hostile, postgres_port_listener):
    host_ip = _host_address()
    result, _ = hostile(
        """
        import socket
        def connect(host, port):
            with socket.create_connection((host, port), timeout=1):
                pass
        report(
            postgres=attempt(lambda: connect("127.0.0.1", 5432)),
            host_ip=attempt(lambda: connect(ARGS.extra[0], 5432)),
            internet=attempt(lambda: connect("1.1.1.1", 443)),
            dns=attempt(lambda: socket.getaddrinfo("example.com", 443)),
            interfaces=[name for _, name in socket.if_nameindex()],
        )
        """,
        argv_extra=(host_ip,),
    )
    assert result.ok, result
    seen = observations(result)
    for target in ("postgres", "host_ip", "internet", "dns"):
        assert seen[target].startswith("error:"), (target, seen[target])
    assert "ConnectionRefused" in seen["postgres"]  # the sandbox's own, empty loopback
    assert seen["interfaces"] == ["lo"]
    if postgres_port_listener is not None:
        with pytest.raises(BlockingIOError):
            postgres_port_listener.accept()


# --- reading what is not the model's -----------------------------------------------


def test_labels_beside_the_inputs_are_invisible(hostile):
    result, layout = hostile(
        """
        token = ARGS.extra[0][::-1].encode()  # reversed so that eval.py itself does not hold it
        skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix)
        readable, holding_token = [], []
        for top, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if not os.path.join(top, d).startswith(skip)]
            for name in files:
                path = os.path.join(top, name)
                try:
                    with open(path, "rb") as handle:
                        content = handle.read(1 << 20)
                except OSError:
                    continue
                readable.append(path)
                if token in content:
                    holding_token.append(path)
        report(
            parent=attempt(lambda: open(os.path.join(ARGS.split, "..", "labels.csv")).read()),
            split_listing=sorted(os.listdir(ARGS.split)),
            readable=readable,
            holding_token=holding_token,
        )
        """,
        argv_extra=(LABEL_TOKEN[::-1],),
    )
    assert result.ok, result
    seen = observations(result)
    assert seen["holding_token"] == []
    assert seen["parent"].startswith("error: FileNotFoundError")
    assert seen["split_listing"] == ["features.csv"]
    assert not any("labels" in path for path in seen["readable"])
    _assert_secrets_absent(result)
    assert str(layout.labels_path) not in result.stdout


def test_labels_by_host_path_are_invisible(hostile, tmp_path):
    labels = tmp_path / "case0" / "benchmark" / "labels.csv"  # where make_layout puts them
    result, layout = hostile(
        """
        report(host_path=attempt(lambda: open(ARGS.extra[0]).read()))
        """,
        argv_extra=(str(labels),),
    )
    assert layout.labels_path == labels
    assert result.ok, result
    assert observations(result)["host_path"].startswith("error: FileNotFoundError")
    _assert_secrets_absent(result)


def test_environment_holds_no_daemon_secrets(hostile, monkeypatch):
    secret = f"postgresql://gate:pw-{uuid.uuid4().hex}@127.0.0.1/db"
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", secret)
    monkeypatch.setenv("PGPASSWORD", secret)
    result, _ = hostile(
        """
        dumps = {}
        for pid in ["1", "self", *[p for p in os.listdir("/proc") if p.isdigit()]]:
            dumps[pid] = attempt(lambda: open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
        print(json.dumps(dumps))
        suspicious = [pid for pid, text in dumps.items()
                      if any(word in text for word in ("postgresql://", "MODEL_EVAL_GATE", "PGPASSWORD"))]
        report(environ=dict(os.environ), suspicious=suspicious,
               parent=attempt(lambda: open(f"/proc/{os.getppid()}/environ").read()))
        """
    )
    assert result.ok, result
    assert "truncated" not in result.stdout  # everything the script could read was checked here
    assert secret not in result.stdout and secret not in result.stderr
    seen = observations(result)
    assert seen["suspicious"] == []
    assert sorted(seen["environ"]) == sorted(
        ["PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE",
         "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PWD"]
    )
    assert seen["environ"]["HOME"] == "/tmp"


def test_files_outside_the_model_directory_cannot_be_read(hostile):
    # The interpreter's own directories are bound read-only at their host paths
    # (a virtualenv under /work, a pyenv under /root, or one in the user's home
    # when not root): their parents exist in the sandbox, but hold nothing else.
    from model_eval_gate.sandbox import _interpreter

    binds = [Path(d) for d in _interpreter(sys.executable).bind_dirs]
    home = Path.home()
    targets = ["/etc/shadow", "/etc/passwd", "/root/.bashrc", "/root/.pyenv/version", "/work/main/pyproject.toml",
               str(home / ".bashrc"), str(home / ".ssh" / "id_rsa"), str(home / ".profile")]
    parents = sorted({str(parent) for bind in binds for parent in bind.parents if str(parent) != "/"})
    result, layout = hostile(
        """
        report(**{path: attempt(lambda: open(path).read()) for path in ARGS.extra if not path.startswith("@")},
               listings={path[1:]: sorted(os.listdir(path[1:])) for path in ARGS.extra if path.startswith("@")},
               top_listing=sorted(os.listdir("/")))
        """,
        argv_extra=(*targets, *("@" + p for p in parents)),
    )
    assert result.ok, result
    seen = observations(result)
    for path in targets:
        assert seen[path].startswith("error:"), (path, seen[path])
    bound_tops = {bind.parts[1] for bind in binds}
    assert set(seen["top_listing"]) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc",
                                        "dev", "tmp", "model", "split", "out", *bound_tops}
    for parent in parents:
        # Only the way to a bound directory: no sibling (no .bashrc, no other checkout) is visible.
        on_the_way = {Path(bind).relative_to(parent).parts[0] for bind in binds if Path(parent) in Path(bind).parents}
        assert set(seen["listings"][parent]) <= on_the_way, (parent, seen["listings"][parent])
    _assert_secrets_absent(result)
    assert str(layout.root) not in result.stdout


def test_test_directories_are_invisible_by_host_path(hostile, tmp_path):
    secret = tmp_path / "case0" / "sentinel" / "secret.txt"
    result, _ = hostile(
        """
        report(secret=attempt(lambda: open(ARGS.extra[0]).read()),
               tree=attempt(lambda: os.listdir(os.path.dirname(os.path.dirname(ARGS.extra[0])))))
        """,
        argv_extra=(str(secret),),
    )
    assert result.ok, result
    seen = observations(result)
    assert seen["secret"].startswith("error: FileNotFoundError")
    assert seen["tree"].startswith("error: FileNotFoundError")
    _assert_secrets_absent(result)


def test_symlinks_planted_in_the_model_directory_do_not_leave_it(hostile):
    def plant(layout):
        os.symlink(layout.sentinel_secret, layout.model_dir / "absolute_link")
        os.symlink("../sentinel/secret.txt", layout.model_dir / "relative_link")
        os.symlink("../benchmark/labels.csv", layout.model_dir / "labels_link")
        os.symlink("/etc/shadow", layout.model_dir / "shadow_link")
        os.symlink(layout.sentinel_dir, layout.model_dir / "dir_link")

    result, _ = hostile(
        """
        names = ["absolute_link", "relative_link", "labels_link", "shadow_link"]
        report(**{name: attempt(lambda: open(name).read()) for name in names},
               dir_link=attempt(lambda: os.listdir("dir_link")))
        """,
        prepare=plant,
    )
    assert result.ok, result
    seen = observations(result)
    for name in ("absolute_link", "relative_link", "labels_link", "shadow_link", "dir_link"):
        assert seen[name].startswith("error: FileNotFoundError"), (name, seen[name])
    _assert_secrets_absent(result)


# --- writing outside /out -----------------------------------------------------------


def test_writes_outside_out_fail_and_tmp_is_private(hostile, tmp_path):
    host_target = tmp_path / "case0" / "sentinel" / "planted.txt"
    result, _ = hostile(
        """
        def write(path):
            with open(path, "w") as handle:
                handle.write("pwned")
        targets = ["/model/pwned", "/model/eval.py", "/split/pwned", "/split/features.csv", "/pwned",
                   "/usr/pwned", "/etc/pwned", "/root/pwned", "/dev/pwned", "/dev/shm/pwned",
                   "/proc/sys/kernel/hostname", "/proc/sysrq-trigger", ARGS.extra[0]]
        report(**{path: attempt(lambda: write(path)) for path in targets},
               tmp=attempt(lambda: write("/tmp/scratch")),
               out=attempt(lambda: write(os.path.join(ARGS.out, "predictions.csv"))),
               mkdir_root=attempt(lambda: os.mkdir("/newdir")),
               chmod_model=attempt(lambda: os.chmod("/model/eval.py", 0o777)))
        """,
        argv_extra=(str(host_target),),
    )
    assert result.ok, result
    seen = observations(result)
    assert seen.pop("tmp") == "ok"
    assert seen.pop("out") == "ok"
    for target, outcome in seen.items():
        assert outcome.startswith("error:"), (target, outcome)
    assert not host_target.exists()
    assert read_output_file(result.out_dir, "predictions.csv", 100) == b"pwned"


def test_tmp_does_not_survive_between_runs(hostile):
    body = """
    before = attempt(lambda: open("/tmp/marker").read())
    with open("/tmp/marker", "w") as handle:
        handle.write("left behind")
    report(before=before)
    """
    first, _ = hostile(body)
    second, _ = hostile(body)
    assert observations(first)["before"].startswith("error: FileNotFoundError")
    assert observations(second)["before"].startswith("error: FileNotFoundError")


def test_tmp_is_bounded(hostile):
    result, _ = hostile(
        """
        written = 0
        def fill():
            global written
            with open("/tmp/big", "wb") as handle:
                while written < 64 * 2**20:
                    handle.write(b"x" * 65536)
                    written += 65536
        report(fill=attempt(fill), written=written)
        """
    )
    assert result.ok, result
    seen = observations(result)
    assert seen["fill"].startswith("error:")
    # Either the tmpfs size (ENOSPC) or RLIMIT_FSIZE (EFBIG) stops it first.
    assert seen["written"] <= TIGHT_LIMITS.tmp_bytes


# --- resources ------------------------------------------------------------------------


def test_fork_bomb_is_contained(hostile):
    token = f"forkbomb-{uuid.uuid4().hex}"
    result, _ = hostile(
        """
        import time
        failures = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.fork()
            except OSError:
                failures += 1
        """,
        argv_extra=(token,),
    )
    assert not result.ok
    assert result.exit_code is None
    assert result.error == f"wall time limit of {TIGHT_LIMITS.wall_seconds} s exceeded"
    assert processes_with(token) == []


def test_unbounded_allocation_hits_the_address_space_limit(hostile):
    limits = dataclasses.replace(TIGHT_LIMITS, address_space_bytes=384 * 2**20)  # less to touch, same test
    result, _ = hostile(
        """
        hoard = []
        while True:
            hoard.append(bytearray(32 * 2**20))
        """,
        limits=limits,
    )
    assert not result.ok
    assert result.exit_code == 1
    assert "MemoryError" in result.stderr
    assert result.error == f"exited with status 1 (MemoryError: address space limit of {limits.address_space_bytes} bytes?)"
    # ru_maxrss of the spawned tree starts from the spawning process's own
    # high-water mark (Linux records the old mm's at exec), so the figure can
    # exceed the model's limit by what this test process holds.
    spawner_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert 100 * 2**20 < result.peak_rss_bytes <= max(limits.address_space_bytes, spawner_peak)


def test_busy_loop_hits_the_cpu_limit(hostile):
    limits = dataclasses.replace(TIGHT_LIMITS, wall_seconds=20.0, cpu_seconds=1)
    result, _ = hostile("while True:\n    pass\n", limits=limits)
    assert not result.ok
    assert result.error == "killed by signal SIGXCPU: cpu time limit of 1 s exceeded"
    # rusage CPU can read below the kernel's own limit accounting on a loaded VM (steal time).
    assert result.cpu_seconds >= 0.5
    assert result.wall_seconds < limits.wall_seconds


def test_sleeping_tree_is_killed_at_the_wall_limit(hostile):
    token = f"sleeper-{uuid.uuid4().hex}"
    result, _ = hostile(
        """
        import subprocess, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(1000)", ARGS.extra[0]]
        subprocess.Popen(sleeper)
        subprocess.Popen(sleeper, start_new_session=True)
        # A double-forked daemon that closed its stdio, reparented to PID 1.
        subprocess.Popen([sys.executable, "-c",
                          "import os, subprocess, sys; subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,"
                          " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)",
                          *sleeper])
        report(started=True)
        time.sleep(1000)
        """,
        argv_extra=(token,),
    )
    assert not result.ok
    assert result.exit_code is None
    assert result.error == "wall time limit of 3.0 s exceeded"
    assert TIGHT_LIMITS.wall_seconds <= result.wall_seconds < TIGHT_LIMITS.wall_seconds + 2
    assert observations(result) == {"started": True}
    # The PID namespace dies with its PID 1; give the kernel a moment to reap.
    deadline = time.monotonic() + 2
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(token) == []


def test_output_flood_is_capped_without_hanging(hostile):
    result, _ = hostile(
        """
        chunk = "x" * 65536
        while True:
            sys.stdout.write(chunk)
            sys.stderr.write(chunk)
        """
    )
    assert not result.ok
    # Flooding burns CPU: on a busy machine the 2 s CPU limit can strike
    # before the 3 s wall limit. Either way the run ends, contained.
    assert result.error == "wall time limit of 3.0 s exceeded" or "SIGXCPU" in result.error \
        or "cpu" in result.error.lower(), result.error
    cap = TIGHT_LIMITS.max_capture_bytes
    for text in (result.stdout, result.stderr):
        assert "bytes truncated by the sandbox runner" in text
        assert len(text.encode()) <= cap + 200
        assert text.startswith("x") and text.endswith("x")


def test_huge_output_file_is_bounded(hostile):
    result, _ = hostile(
        """
        written = 0
        def fill():
            global written
            with open(os.path.join(ARGS.out, "predictions.csv"), "wb") as handle:
                while written < 256 * 2**20:
                    handle.write(b"1" * 65536)
                    handle.flush()
                    written += 65536
        outcome = attempt(fill)
        report(outcome=outcome, written=written)
        """
    )
    assert not result.ok
    assert result.error == f"output directory exceeded {TIGHT_LIMITS.max_output_bytes} bytes"
    with pytest.raises(SandboxOutputError, match="over the 1048576-byte limit"):
        read_output_file(result.out_dir, "predictions.csv", TIGHT_LIMITS.max_output_bytes)


def test_many_output_files_are_bounded(hostile):
    result, _ = hostile(
        """
        created = 0
        def spray():
            global created
            while created < 100000:
                open(os.path.join(ARGS.out, f"f{created}"), "w").close()
                created += 1
        report(outcome=attempt(spray), created=created)
        """
    )
    assert not result.ok
    assert result.error == f"output directory exceeded {TIGHT_LIMITS.max_output_files} files"


def test_malformed_output_is_the_parsers_problem(hostile):
    garbage = b"\x00\xff not,a,csv\n\"unterminated\n" * 10
    result, _ = hostile(
        f"""
        with open(os.path.join(ARGS.out, "predictions.csv"), "wb") as handle:
            handle.write({garbage!r})
        print("\\x00 binary noise \\x1b[2J")
        """
    )
    assert result.ok, result
    assert "\x00" not in result.stdout  # NUL cannot go into PostgreSQL text
    assert read_output_file(result.out_dir, "predictions.csv", 4096) == garbage


def test_hostile_output_entries_are_refused_by_the_reader(hostile):
    result, _ = hostile(
        """
        os.symlink("/etc/shadow", os.path.join(ARGS.out, "predictions.csv"))
        os.symlink("/etc/hostname", os.path.join(ARGS.out, "dangling.csv"))
        os.mkfifo(os.path.join(ARGS.out, "fifo.csv"))
        os.mkdir(os.path.join(ARGS.out, "dir.csv"))
        report(mknod=attempt(lambda: os.mknod(os.path.join(ARGS.out, "dev.csv"), 0o600 | 0o020000, os.makedev(1, 3))))
        """
    )
    assert result.ok, result
    assert observations(result)["mknod"].startswith("error: PermissionError")
    with pytest.raises(SandboxOutputError, match="symbolic link"):
        read_output_file(result.out_dir, "predictions.csv", 4096)
    with pytest.raises(SandboxOutputError, match="symbolic link"):
        read_output_file(result.out_dir, "dangling.csv", 4096)
    with pytest.raises(SandboxOutputError, match="FIFO, not a regular file"):
        read_output_file(result.out_dir, "fifo.csv", 4096)  # must not block waiting for a writer
    with pytest.raises(SandboxOutputError, match="directory, not a regular file"):
        read_output_file(result.out_dir, "dir.csv", 4096)
    with pytest.raises(SandboxOutputError, match="plain file name"):
        read_output_file(result.out_dir, "../model/eval.py", 4096)


def test_output_directory_with_permissions_removed_is_still_discarded(hostile):
    result, _ = hostile(
        """
        nested = os.path.join(ARGS.out, "locked", "deeper")
        os.makedirs(nested)
        open(os.path.join(nested, "f"), "w").close()
        os.chmod(nested, 0)
        os.chmod(os.path.join(ARGS.out, "locked"), 0)
        """
    )
    assert result.ok, result
    discard_output(result.out_dir)
    assert not os.path.exists(result.out_dir)


# --- processes and the terminal -----------------------------------------------------------


def test_killing_the_parent_and_pid_1_is_harmless(hostile):
    result, _ = hostile(
        """
        import signal
        outcomes = dict(
            parent=attempt(lambda: os.kill(os.getppid(), signal.SIGKILL)),
            pid1=attempt(lambda: os.kill(1, signal.SIGKILL)),
            ppid=os.getppid(),
        )
        with open(os.path.join(ARGS.out, "predictions.csv"), "w") as handle:
            handle.write("example_id,prediction\\n")
        report(**outcomes)
        """
    )
    assert result.ok, result
    seen = observations(result)
    assert seen["ppid"] == 1
    if ROOT_MODE:  # PID 1 runs as root; the sandbox uid may not signal it
        assert seen["parent"].startswith("error: PermissionError")
        assert seen["pid1"].startswith("error: PermissionError")
    assert os.getpid() > 0  # and this process is alive to say so


def test_kill_everything_it_can_see_is_contained(hostile):
    # A host process of the sandbox's own uid: the strongest bystander.
    as_sandbox_uid = ["setpriv", f"--reuid={ISOLATED_UID}", f"--regid={ISOLATED_UID}", "--clear-groups"]
    if not ROOT_MODE:
        as_sandbox_uid = []
    bystander = subprocess.Popen([*as_sandbox_uid, "sleep", "30"])
    try:
        result, _ = hostile(
            """
            import signal, subprocess, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            outcome = attempt(lambda: os.kill(-1, signal.SIGKILL))
            child.wait()
            report(outcome=outcome, child_status=child.returncode)
            """
        )
        # kill(-1) reaches only the sandbox's own processes (not itself, not PID 1).
        assert result.ok, result
        assert observations(result) == {"outcome": "ok", "child_status": -9}
        assert bystander.poll() is None, "a host process was killed from inside the sandbox"
    finally:
        bystander.kill()
        bystander.wait()


def test_tiocsti_terminal_injection_is_impossible(hostile):
    result, _ = hostile(
        """
        import fcntl, termios
        report(**{f"fd{fd}": attempt(lambda: fcntl.ioctl(fd, termios.TIOCSTI, b"x")) for fd in (0, 1, 2)},
               tty=attempt(lambda: open("/dev/tty", "w")))
        """
    )
    assert result.ok, result
    seen = observations(result)
    for fd in ("fd0", "fd1", "fd2"):
        assert seen[fd].startswith("error: OSError"), seen[fd]
    assert seen["tty"].startswith("error: OSError"), seen["tty"]


def test_privileges_inside_are_those_of_an_unprivileged_uid(hostile):
    result, _ = hostile(
        """
        import ctypes
        def unshare_mounts():
            if ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0:  # CLONE_NEWNS
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        report(uid=status["Uid"].split(), gid=status["Gid"].split(), groups=status["Groups"].split(),
               cap_eff=status["CapEff"].strip(), cap_bnd=status["CapBnd"].strip(), cap_amb=status["CapAmb"].strip(),
               no_new_privs=status["NoNewPrivs"].strip(),
               proc_sys=attempt(lambda: open("/proc/sys/vm/drop_caches", "w").write("3")),
               setuid_root=attempt(lambda: os.setuid(0)),
               mount=attempt(unshare_mounts))
        """
    )
    assert result.ok, result
    seen = observations(result)
    assert "0" not in seen["uid"]
    assert "0" not in seen["gid"]
    if ROOT_MODE:
        assert seen["uid"] == [str(ISOLATED_UID)] * 4
        assert seen["groups"] == []
    assert seen["cap_eff"] == seen["cap_bnd"] == seen["cap_amb"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    for attempt_name in ("proc_sys", "setuid_root", "mount"):
        assert seen[attempt_name].startswith("error:"), (attempt_name, seen[attempt_name])
