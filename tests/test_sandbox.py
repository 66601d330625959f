"""The sandbox runner's contract: a benign eval.py runs and its output reads back,
limits and inputs are validated, the environment and descriptors are clean,
the model runs as an unprivileged host uid, a missing bubblewrap is refused
unless explicitly allowed, and the unprivileged (non-root) path works too.

Real bubblewrap throughout; the hostile suite is in test_sandbox_hostile.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import structlog

from hostile.harness import (
    ISOLATED_UID,
    MIB,
    TIGHT_LIMITS,
    make_layout,
    observations,
    processes_with,
    require_bubblewrap,
)
from model_eval_gate.config import DEFAULT_SANDBOX_UID
from model_eval_gate.sandbox import (
    SandboxConfigError,
    SandboxLimits,
    SandboxOutputError,
    SandboxResult,
    SandboxUnavailable,
    bwrap_available,
    discard_output,
    read_output_file,
    run_eval_py,
)

ROOT_MODE = os.geteuid() == 0
DAEMON_SOURCE = Path(__file__).resolve().parent.parent / "daemon"

BENIGN = """
import csv
import numpy as np
with open(os.path.join(ARGS.split, "features.csv")) as handle:
    rows = list(csv.DictReader(handle))
x = np.array([float(row["x"]) for row in rows])
probability = 1.0 / (1.0 + np.exp(-x))
with open(os.path.join(ARGS.out, "predictions.csv"), "w") as handle:
    handle.write("example_id,prediction\\n")
    for row, p in zip(rows, probability):
        handle.write(f"{row['example_id']},{p:.6f}\\n")
report(cwd=os.getcwd(), numpy=np.__version__, n=len(rows))
"""


@pytest.fixture(autouse=True)
def _bubblewrap_present():
    require_bubblewrap()


@pytest.fixture
def layout(tmp_path):
    return make_layout(tmp_path / "case", BENIGN)


def _run(layout, **kwargs):
    kwargs.setdefault("limits", TIGHT_LIMITS)
    kwargs.setdefault("work_dir", layout.work_dir)
    return run_eval_py(layout.model_dir, layout.split_dir, **kwargs)


def test_benign_eval_succeeds_and_its_output_reads_back(layout):
    with _run(layout) as result:
        assert isinstance(result, SandboxResult)
        assert result.ok, result
        assert (result.exit_code, result.error, result.sandboxed) == (0, None, True)
        seen = observations(result)
        assert seen["cwd"] == "/model"
        assert seen["n"] == 3
        assert Path(result.out_dir).parent == layout.work_dir
        predictions = read_output_file(result.out_dir, "predictions.csv", 4096).decode()
        assert predictions.splitlines() == [
            "example_id,prediction", "e1,0.622459", "e2,0.817574", "e3,0.437823",
        ]
        assert result.wall_seconds > 0
        assert result.cpu_seconds > 0  # python and numpy's import, accounted through PID 1
        assert result.peak_rss_bytes > 10 * MIB
    assert not os.path.exists(result.out_dir)  # the context manager released it


def test_each_run_gets_a_fresh_output_directory(layout):
    first = _run(layout)
    second = _run(layout)
    try:
        assert first.out_dir != second.out_dir
        assert sorted(os.listdir(first.out_dir)) == ["predictions.csv"]
    finally:
        discard_output(first.out_dir)
        discard_output(second.out_dir)
        discard_output(first.out_dir)  # idempotent
    assert os.listdir(layout.work_dir) == []


def test_default_work_dir_is_the_system_temporary_directory(layout):
    with run_eval_py(layout.model_dir, layout.split_dir, limits=TIGHT_LIMITS) as result:
        assert result.ok, result
        assert Path(result.out_dir).parent == Path(tempfile.gettempdir())


def test_result_records_wall_cpu_and_peak_rss(tmp_path):
    layout = make_layout(
        tmp_path / "case",
        """
        import time
        ballast = bytearray(150 * 2**20)
        started = time.process_time()
        while time.process_time() - started < 0.4:
            pass
        time.sleep(0.3)
        """,
    )
    with _run(layout) as result:
        assert result.ok, result
        assert result.cpu_seconds >= 0.25  # rusage may read low on a loaded VM (steal time)
        assert result.wall_seconds >= 0.7
        assert result.peak_rss_bytes >= 150 * MIB


def test_inherited_descriptors_are_not_visible(layout, tmp_path):
    leaked_file = tmp_path / "parent-secret.txt"
    leaked_file.write_text("not for the model")
    fd = os.open(leaked_file, os.O_RDONLY)  # without O_CLOEXEC once made inheritable
    os.set_inheritable(fd, True)
    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, True)
    os.set_inheritable(write_end, True)
    (layout.model_dir / "eval.py").write_text(
        (layout.model_dir / "eval.py").read_text().split("import csv")[0]
        + "fds = {}\n"
        "for name in os.listdir('/proc/self/fd'):\n"
        "    fds[name] = attempt(lambda: os.readlink('/proc/self/fd/' + name))\n"
        "report(fds=fds)\n"
    )
    try:
        with _run(layout) as result:
            assert result.ok, result
            fds = observations(result)["fds"]
    finally:
        for descriptor in (fd, read_end, write_end):
            os.close(descriptor)
    assert set(fds) <= {"0", "1", "2", "3"}  # stdio and listdir's own descriptor
    assert fds["0"] == "ok: /dev/null"
    assert not any(str(leaked_file) in target for target in fds.values())


def _eval_py_processes(token: str) -> list[int]:
    # bwrap and its PID 1 carry the token too; the model is the one running eval.py.
    pids = []
    for pid in processes_with(token):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:2] == [b"eval.py"]:
            pids.append(pid)
    return pids


def test_the_model_is_an_unprivileged_host_uid_seen_from_the_host(tmp_path):
    token = f"uid-probe-{uuid.uuid4().hex}"
    layout = make_layout(tmp_path / "case", "import time\ntime.sleep(1.5)\n")
    results = []
    runner = threading.Thread(target=lambda: results.append(_run(layout, argv_extra=(token,))))
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not _eval_py_processes(token) and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = _eval_py_processes(token)
        statuses = [Path(f"/proc/{pid}/status").read_text() for pid in pids]
    finally:
        runner.join()
        for result in results:
            discard_output(result.out_dir)
    assert results[0].ok, results[0]
    assert pids, "the sandboxed process never appeared"
    for status in statuses:
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert "0" not in uids
        if ROOT_MODE:
            assert uids == [str(DEFAULT_SANDBOX_UID)] * 4
        capabilities = next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1]
        assert int(capabilities, 16) == 0


def test_cancelling_kills_the_run_promptly(tmp_path):
    token = f"cancelled-{uuid.uuid4().hex}"
    layout = make_layout(tmp_path / "case", "import time\nreport(started=True)\ntime.sleep(60)\n")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    limits = dataclasses.replace(TIGHT_LIMITS, wall_seconds=30.0)
    with _run(layout, limits=limits, argv_extra=(token,), cancel=cancel) as result:
        assert not result.ok
        assert (result.error, result.exit_code) == ("cancelled by the caller", None)
        assert result.wall_seconds < 2.0
        assert observations(result) == {"started": True}
    assert processes_with(token) == []


def test_a_symlinked_model_directory_is_resolved(layout, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(layout.model_dir)
    with run_eval_py(alias, layout.split_dir, limits=TIGHT_LIMITS, work_dir=layout.work_dir) as result:
        assert result.ok, result


def test_another_interpreter_is_bound_and_used(tmp_path):
    system_python = shutil.which("python3", path="/usr/bin")
    assert system_python, "/usr/bin/python3 is needed to test a non-default interpreter"
    layout = make_layout(tmp_path / "case", "report(executable=sys.executable, prefix=sys.prefix)\n")
    with _run(layout, python=system_python) as result:
        assert result.ok, result
        assert observations(result) == {"executable": system_python, "prefix": "/usr"}


# --- refusing bad input --------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("wall_seconds", 0), ("wall_seconds", -1.0), ("wall_seconds", math.nan), ("wall_seconds", math.inf),
     ("cpu_seconds", 1.5), ("cpu_seconds", True), ("address_space_bytes", 0), ("max_processes", -3),
     ("max_output_bytes", "1"), ("max_capture_bytes", None)],
)
def test_invalid_limits_are_refused(field, value):
    with pytest.raises(SandboxConfigError, match=f"SandboxLimits.{field}"):
        SandboxLimits(**{field: value})


def test_default_limits_are_production_sized():
    limits = SandboxLimits()
    assert limits.wall_seconds >= 600 and limits.cpu_seconds >= 600
    assert limits.address_space_bytes >= 4 * 1024 * MIB
    assert limits.max_output_bytes >= 64 * MIB


def test_missing_inputs_are_refused_with_a_clear_message(layout, tmp_path):
    with pytest.raises(SandboxConfigError, match="has no eval.py"):
        run_eval_py(layout.split_dir, layout.split_dir, work_dir=layout.work_dir)
    with pytest.raises(SandboxConfigError, match="split directory .* does not exist"):
        run_eval_py(layout.model_dir, tmp_path / "nowhere", work_dir=layout.work_dir)
    with pytest.raises(SandboxConfigError, match="model directory .* does not exist"):
        run_eval_py(tmp_path / "nowhere", layout.split_dir, work_dir=layout.work_dir)
    assert os.listdir(layout.work_dir) == []


def test_a_model_directory_holding_the_benchmark_is_refused(tmp_path):
    layout = make_layout(tmp_path / "case", BENIGN)
    nested_split = layout.model_dir / "bench" / "inputs"
    nested_split.mkdir(parents=True)
    with pytest.raises(SandboxConfigError, match="labels would be visible"):
        run_eval_py(layout.model_dir, nested_split, work_dir=layout.work_dir)


def test_an_interpreter_prefix_holding_the_benchmark_is_refused(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    layout = make_layout(venv / "case", BENIGN)
    with pytest.raises(SandboxConfigError, match="lies inside .*venv"):
        run_eval_py(layout.model_dir, layout.split_dir, python=str(venv / "bin" / "python"), work_dir=layout.work_dir)


def test_uid_0_and_inputs_the_sandbox_uid_cannot_read_are_refused(layout):
    with pytest.raises(SandboxConfigError, match="must not be 0"):
        run_eval_py(layout.model_dir, layout.split_dir, sandbox_uid=0, work_dir=layout.work_dir)
    with pytest.raises(SandboxConfigError, match="must not be 0"):
        run_eval_py(layout.model_dir, layout.split_dir, sandbox_gid=0, work_dir=layout.work_dir)
    layout.model_dir.chmod(0o700)
    if ROOT_MODE:
        with pytest.raises(SandboxConfigError, match=f"not readable by the sandbox uid {DEFAULT_SANDBOX_UID}"):
            run_eval_py(layout.model_dir, layout.split_dir, work_dir=layout.work_dir)
    else:  # unprivileged, the model runs as the caller's own uid, which owns the directory
        with _run(layout) as result:
            assert result.ok, result
    assert os.listdir(layout.work_dir) == []


# --- without bubblewrap -------------------------------------------------------------------


def test_missing_bubblewrap_is_refused(layout, tmp_path):
    missing = str(tmp_path / "no-such-bwrap")
    assert not bwrap_available(missing)
    with pytest.raises(SandboxUnavailable, match=r"bubblewrap \(bwrap\) not found .*install it"):
        run_eval_py(layout.model_dir, layout.split_dir, bwrap=missing, work_dir=layout.work_dir)
    assert os.listdir(layout.work_dir) == []


def test_unsandboxed_runs_need_the_flag_and_warn_every_time(layout, tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", "postgresql://secret-dsn")
    (layout.model_dir / "eval.py").write_text(
        (layout.model_dir / "eval.py").read_text()
        + "import resource\n"
        "report(nproc=resource.getrlimit(resource.RLIMIT_NPROC), as_=resource.getrlimit(resource.RLIMIT_AS),\n"
        "       fsize=resource.getrlimit(resource.RLIMIT_FSIZE), dsn=os.environ.get('MODEL_EVAL_GATE_DSN'))\n"
    )
    missing = str(tmp_path / "no-such-bwrap")
    for _ in range(2):
        with structlog.testing.capture_logs() as logs:
            with _run(layout, bwrap=missing, allow_unsandboxed=True) as result:
                assert result.ok, result
                assert result.sandboxed is False
                seen = observations(result)
                assert read_output_file(result.out_dir, "predictions.csv", 4096).startswith(b"example_id,")
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert [entry["event"] for entry in warnings] == ["sandbox.unsandboxed_run"]
        assert seen["nproc"] == [TIGHT_LIMITS.max_processes] * 2
        assert seen["as_"] == [TIGHT_LIMITS.address_space_bytes] * 2
        assert seen["fsize"] == [TIGHT_LIMITS.max_file_bytes] * 2
        assert seen["dsn"] is None


# --- reading outputs -------------------------------------------------------------------------


def test_read_output_file_checks_presence_size_and_names(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "predictions.csv").write_bytes(b"a" * 100)
    assert read_output_file(out_dir, "predictions.csv", 100) == b"a" * 100
    with pytest.raises(SandboxOutputError, match="100 bytes, over the 99-byte limit"):
        read_output_file(out_dir, "predictions.csv", 99)
    with pytest.raises(SandboxOutputError, match="did not write predictions.npz"):
        read_output_file(out_dir, "predictions.npz", 100)
    for bad_name in ("", ".", "..", "sub/predictions.csv", "/etc/passwd"):
        with pytest.raises(SandboxOutputError, match="plain file name"):
            read_output_file(out_dir, bad_name, 100)
    with pytest.raises(SandboxOutputError, match="max_bytes"):
        read_output_file(out_dir, "predictions.csv", -1)


def test_read_output_file_does_not_follow_a_symlinked_output_directory(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "predictions.csv").write_text("x")
    (tmp_path / "out").symlink_to(real)
    with pytest.raises(SandboxOutputError, match="cannot be opened"):
        read_output_file(tmp_path / "out", "predictions.csv", 100)


# --- the unprivileged path -------------------------------------------------------------------

_UNPRIVILEGED_RUNNER = """
import json, os, sys
from model_eval_gate.sandbox import SandboxLimits, discard_output, read_output_file, run_eval_py
config = json.loads(sys.argv[1])
limits = SandboxLimits(**config["limits"])
report = {"runner_uid": os.getuid()}
for name, model_dir in config["models"].items():
    result = run_eval_py(model_dir, config["split"], limits=limits, work_dir=config["work"], python=config["python"])
    entry = {"ok": result.ok, "error": result.error, "exit_code": result.exit_code, "stdout": result.stdout,
             "stderr": result.stderr, "cpu": result.cpu_seconds, "wall": result.wall_seconds}
    try:
        entry["predictions"] = read_output_file(result.out_dir, "predictions.csv", 4096).decode()
    except ValueError as exc:
        entry["predictions"] = str(exc)
    discard_output(result.out_dir)
    entry["discarded"] = not os.path.exists(result.out_dir)
    report[name] = entry
print(json.dumps(report))
"""


@pytest.fixture
def world_reachable_dir():
    """A scratch directory any uid can reach (pytest's tmp_path sits under 0700 parents)."""
    path = Path(tempfile.mkdtemp(prefix="meg-sandbox-unprivileged-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_unprivileged_path_runs_in_a_user_namespace(world_reachable_dir):
    """Without root the runner uses bubblewrap's unprivileged user namespace and a
    host-side watch of /out. As root, this test drops to an unprivileged uid to get there
    (one of its own: RLIMIT_NPROC counts the runner and bwrap against it)."""
    system_python = "/usr/bin/python3"
    assert os.access(system_python, os.X_OK), (
        "the non-root path is tested with /usr/bin/python3, which an unprivileged uid can run "
        "(the project interpreter may sit under a 0700 home)"
    )
    base = world_reachable_dir
    models = {
        "benign": """
            import ctypes, socket
            def nested_user_namespace():
                if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            with open(os.path.join(ARGS.out, "predictions.csv"), "w") as handle:
                handle.write("example_id,prediction\\ne1,1\\n")
            status = open("/proc/self/status").read()
            report(uid=os.getuid(), host_uid_line=[l for l in status.splitlines() if l.startswith("Uid:")][0],
                   network=attempt(lambda: socket.create_connection(("127.0.0.1", 5432), timeout=1)),
                   environ=sorted(os.environ), nested_userns=attempt(nested_user_namespace),
                   dev_write=attempt(lambda: open("/dev/scratch", "w").write("x")),
                   dev_null=attempt(lambda: open("/dev/null", "w").write("x")),
                   root_write=attempt(lambda: open("/scratch", "w").write("x")))
            """,
        "flood": """
            import time
            for index in range(100000):
                with open(os.path.join(ARGS.out, f"part{index}"), "wb") as handle:
                    handle.write(b"1" * 65536)
                time.sleep(0.005)
            """,
        "locked": """
            nested = os.path.join(ARGS.out, "locked", "deeper")
            os.makedirs(nested)
            open(os.path.join(nested, "f"), "w").close()
            os.chmod(nested, 0)
            os.chmod(os.path.join(ARGS.out, "locked"), 0)
            import time
            time.sleep(10)
            """,
        "locked_flood": """
            hidden = os.path.join(ARGS.out, "d")
            os.mkdir(hidden)
            os.chmod(hidden, 0o300)  # writable and searchable, not listable
            import time
            for index in range(100000):
                with open(os.path.join(hidden, f"part{index}"), "wb") as handle:
                    handle.write(b"1" * 65536)
                time.sleep(0.005)
            """,
    }
    layouts = {name: make_layout(base / name, body) for name, body in models.items()}
    work = base / "work"
    work.mkdir()
    drop = []
    if ROOT_MODE:
        for path in (base, work):
            os.chown(path, ISOLATED_UID, ISOLATED_UID)
        base.chmod(0o755)
        drop = ["setpriv", f"--reuid={ISOLATED_UID}", f"--regid={ISOLATED_UID}", "--clear-groups"]
    structlog_site = str(Path(structlog.__file__).resolve().parent.parent)
    config = {
        "limits": dataclasses.asdict(TIGHT_LIMITS),
        "models": {name: str(layout.model_dir) for name, layout in layouts.items()},
        "split": str(layouts["benign"].split_dir),
        "work": str(work),
        "python": system_python,
    }
    completed = subprocess.run(
        [*drop, system_python, "-c", _UNPRIVILEGED_RUNNER, json.dumps(config)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{DAEMON_SOURCE}:{structlog_site}"},
        capture_output=True, text=True, timeout=120, cwd="/",
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    expected_uid = ISOLATED_UID if ROOT_MODE else os.getuid()
    assert report["runner_uid"] == expected_uid

    benign = report["benign"]
    assert benign["ok"], benign
    assert benign["predictions"] == "example_id,prediction\ne1,1\n"
    assert benign["discarded"]
    seen = json.loads(benign["stdout"].split("@@report@@")[1])
    assert seen["uid"] == expected_uid  # mapped to itself in the user namespace
    assert seen["network"].startswith("error:")
    assert seen["nested_userns"].startswith("error:")  # --disable-userns
    # Unprivileged, bwrap's tmpfs / and /dev belong to the sandbox uid: only read-only mounts stop writes.
    assert seen["dev_write"].startswith("error: OSError: [Errno 30]")
    assert seen["root_write"].startswith("error: OSError: [Errno 30]")
    assert seen["dev_null"] == "ok: 1"
    assert "PYTHONPATH" not in seen["environ"]
    assert benign["cpu"] > 0

    flood = report["flood"]
    assert not flood["ok"]
    assert flood["exit_code"] is None  # killed by the host-side watch, not a post-mortem finding
    assert flood["error"] == f"output directory exceeded {TIGHT_LIMITS.max_output_bytes} bytes"
    assert flood["wall"] < TIGHT_LIMITS.wall_seconds
    assert flood["discarded"]

    # Fail closed: a directory the host-side watch cannot read ends the run
    # (it could hide any amount of data), and is still discarded.
    for name in ("locked", "locked_flood"):
        locked = report[name]
        assert not locked["ok"] and locked["exit_code"] is None, locked
        assert "which the runner cannot read (permissions removed)" in locked["error"], locked
        assert locked["wall"] < TIGHT_LIMITS.wall_seconds
        assert locked["discarded"]
    assert os.listdir(work) == []
