"""The whole sandbox's memory is bounded and measured (issue 14, item 7).

Where the deployment delegates a cgroup v2 with the memory and pids
controllers, each run gets its own (memory.max, pids.max, memory.peak);
elsewhere, as on the development VM whose memory controller is cgroup v1's,
the runner samples the process tree. Either way a model that hoards memory
outside RLIMIT_AS (memfd pages, many processes) is stopped, and the result
says how its peak was measured (memory_scope).
"""
from __future__ import annotations

import dataclasses
import resource

import pytest

from hostile.harness import ISOLATED_UID, TIGHT_LIMITS, make_layout, require_bubblewrap
from model_eval_gate.sandbox import discard_output, memory_measurement, run_eval_py

MIB = 1 << 20
LIMITS = dataclasses.replace(TIGHT_LIMITS, memory_bytes=256 * MIB, wall_seconds=10.0, cpu_seconds=8,
                             max_file_bytes=64 * MIB)


@pytest.fixture(autouse=True)
def _bubblewrap_present():
    require_bubblewrap()


def _run(tmp_path, body, limits=LIMITS):
    layout = make_layout(tmp_path / "model", body)
    result = run_eval_py(layout.model_dir, layout.split_dir, limits=limits, work_dir=layout.work_dir,
                         sandbox_uid=ISOLATED_UID, sandbox_gid=ISOLATED_UID)
    discard_output(result.out_dir)
    return result


def test_memfd_pages_outside_every_address_space_are_bounded(tmp_path):
    result = _run(tmp_path, """
        import time
        chunk = b"x" * (16 << 20)
        hoard = []
        for _ in range(10):  # 10 x 64 MiB, each under RLIMIT_FSIZE, never mapped: RLIMIT_AS does not see them
            fd = os.memfd_create("hoard")
            for _ in range(4):
                os.write(fd, chunk)
            hoard.append(fd)
        time.sleep(30)
        """)
    assert not result.ok
    assert result.error.startswith(f"memory limit of {LIMITS.memory_bytes} bytes exceeded"), result.error
    assert result.memory_scope in ("cgroup", "process_tree")
    assert result.wall_seconds < LIMITS.wall_seconds


def test_many_processes_each_under_rlimit_as_are_bounded_together(tmp_path):
    result = _run(tmp_path, """
        import time
        for _ in range(6):
            if os.fork() == 0:
                hoard = bytearray(80 << 20)  # 80 MiB each, touched
                for i in range(0, len(hoard), 4096):
                    hoard[i] = 1
                time.sleep(30)
                os._exit(0)
        time.sleep(30)
        """)
    assert not result.ok
    assert result.error.startswith(f"memory limit of {LIMITS.memory_bytes} bytes exceeded"), result.error


def test_the_result_says_how_the_whole_sandbox_was_measured(tmp_path):
    result = _run(tmp_path, """
        import time
        ballast = bytearray(64 << 20)
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        time.sleep(0.5)
        """)
    assert result.ok, result
    scope, why = memory_measurement()
    assert result.memory_scope == scope, why
    assert result.peak_memory_bytes >= 64 * MIB
    # ru_maxrss starts from the spawner's own high-water mark: only above it
    # is it the model's, and then the whole-sandbox peak covers it.
    if scope == "process_tree" and result.peak_rss_bytes > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024:
        assert result.peak_memory_bytes >= result.peak_rss_bytes


def test_the_spawners_own_peak_is_not_the_models(tmp_path):
    # A daemon that once held a lot (this test process, made to) spawns a
    # small model: ru_maxrss reports the daemon's high-water mark, the
    # whole-sandbox peak must not, or a memory tradeoff claim would compare
    # two daemons instead of two models.
    held = bytearray(256 << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    del held
    result = _run(tmp_path, "x = 1\n")
    assert result.ok, result
    assert result.peak_rss_bytes >= 256 * MIB  # the pollution this guards against
    assert result.peak_memory_bytes < 128 * MIB, (result.memory_scope, result.peak_memory_bytes)
