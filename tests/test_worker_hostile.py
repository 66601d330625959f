"""The daemon against hostile candidates (issue 14): every attack ends in a recorded
verdict, the daemon keeps serving, and a daemon killed mid-run leaves nothing
that the next one does not remove."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from gate_world import World
from invariants import assert_lineage_invariants
from test_worker import DaemonStarter, insert_candidate, jobs_of, promoted_root, wait_decided, wait_until, write_model

from model_eval_gate.evaluate import model_dir
from model_eval_gate.sandbox.workdirs import PREFIX

pytestmark = pytest.mark.slow
ROOT_MODE = os.geteuid() == 0


@pytest.fixture
def world(settings, conn, tmp_path):
    return World(settings, conn, tmp_path, n=200)


@pytest.fixture
def start_daemon(settings, tmp_path):
    starter = DaemonStarter(settings, tmp_path)
    try:
        yield starter
    finally:
        starter.kill_all()


ATTACKS = {
    # item 1: a header no benchmark allows, 3 MB of it
    "header-bomb": ("import os, sys\nout = sys.argv[sys.argv.index('--out') + 1]\n"
                    "open(os.path.join(out, 'predictions.csv'), 'w').write("
                    "','.join(['example_id', 'prediction'] + ['c%d' % i for i in range(400000)]) + '\\n')\n",
                    "invalid_eval_output"),
    # item 1/3: an .npy header claiming 10**12 elements (an uncaught MemoryError before)
    "npy-bomb": ("import io, os, sys, zipfile, numpy as np\nout = sys.argv[sys.argv.index('--out') + 1]\n"
                 "header = io.BytesIO()\n"
                 "np.lib.format.write_array_header_1_0(header, {'descr': '<f8', 'fortran_order': False, "
                 "'shape': (10**12,)})\n"
                 "with zipfile.ZipFile(os.path.join(out, 'predictions.npz'), 'w') as z:\n"
                 "    z.writestr('example_id.npy', header.getvalue())\n"
                 "    z.writestr('prediction.npy', header.getvalue())\n",
                 "invalid_eval_output"),
    # item 8: a model forging bubblewrap's own error message
    "forger": ("import sys\nsys.stderr.write('bwrap: Creating new namespace failed: Operation not permitted\\n')\n"
               "sys.exit(1)\n", "sandbox_failure"),
}


def test_hostile_candidates_end_in_verdicts_and_the_daemon_keeps_serving(world, conn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1")
    for artifact_id, (source, _) in ATTACKS.items():
        directory = model_dir(world.settings, artifact_id)
        directory.mkdir(parents=True)
        (directory / "eval.py").write_text(source)
        insert_candidate(conn, artifact_id, benchmark_id=world.benchmark.id, parent="root")
    # item 2: a model directory holding a 64 GiB sparse file (8 KB on disk)
    write_model(world.settings, "sparse", strength=0.9)
    with open(model_dir(world.settings, "sparse") / "weights.bin", "wb") as handle:
        handle.truncate(64 << 30)
    insert_candidate(conn, "sparse", benchmark_id=world.benchmark.id, parent="root")

    expected = {**{name: code for name, (_, code) in ATTACKS.items()}, "sparse": "invalid_model_directory"}
    for artifact_id, reason_code in expected.items():
        job = wait_decided(conn, artifact_id, daemons=[daemon], timeout=60)
        assert (job["outcome"], job["result"]["reason_code"], job["attempt"]) == ("error", reason_code, 1), job
    assert "setup failed" not in str(jobs_of(conn, "forger")[0]["result"])

    write_model(world.settings, "honest", strength=0.95)  # served after all of them
    insert_candidate(conn, "honest", benchmark_id=world.benchmark.id, parent="root")
    assert wait_decided(conn, "honest", daemons=[daemon])["outcome"] == "promote"
    assert daemon.proc.poll() is None
    statuses = conn.execute("SELECT status, count(*) AS n FROM gate_jobs GROUP BY status").fetchall()
    assert {row["status"] for row in statuses} == {"done"}, statuses
    assert_lineage_invariants(conn)


def _mounts_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(f"{root}/")]


def test_a_daemon_killed_mid_run_leaves_nothing_the_next_one_keeps(world, conn, start_daemon):
    promoted_root(world)
    first = start_daemon("d1")
    write_model(world.settings, "slow", strength=0.95, sleep=2.0)
    insert_candidate(conn, "slow", benchmark_id=world.benchmark.id, parent="root")
    first.wait_for("evaluation_started", candidate_id="slow")
    tmp_dir = start_daemon.tmp_dir
    leftovers = wait_until(lambda: sorted(tmp_dir.glob(PREFIX + "*")), timeout=10, what="the daemon's work dir")
    if ROOT_MODE:
        wait_until(lambda: _mounts_under(tmp_dir), timeout=10, what="the output tmpfs")
    first.signal(signal.SIGKILL)
    first.wait_exit()
    assert all(path.exists() for path in leftovers)

    second = start_daemon("d2")  # removes them at start, before it claims anything
    removed = second.wait_for("leftovers_removed")
    assert set(removed["directories"]) == {str(path) for path in leftovers}
    assert not any(path.exists() for path in leftovers)
    assert not any(_mounts_under(path) for path in leftovers)
    # The killed daemon's job comes back when its lease runs out, and is decided.
    assert wait_decided(conn, "slow", daemons=[second], timeout=60)["outcome"] == "promote"
