"""Work directories: a dead process's are removed, a live one's never (issue 14, item 10)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys

from model_eval_gate.sandbox.workdirs import LOCK_NAME, PREFIX, process_work_dir, remove_leftovers


def _leftover(root, name, *, locked_by=None):
    directory = root / f"{PREFIX}{name}"
    (directory / "meg-eval-x" / "model-eval-out-y" / "locked").mkdir(parents=True)
    (directory / "meg-eval-x" / "model-eval-out-y" / "predictions.csv").write_text("x")
    (directory / "meg-eval-x" / "model-eval-out-y" / "locked").chmod(0)
    (directory / LOCK_NAME).touch()
    return directory


def test_only_directories_whose_owner_is_gone_are_removed(tmp_path):
    dead = _leftover(tmp_path, "1-dead")
    alive = _leftover(tmp_path, "2-alive")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(alive / LOCK_NAME)!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        unrelated = tmp_path / "someone-elses"
        unrelated.mkdir()
        assert remove_leftovers(tmp_path) == [str(dead)]
        assert not dead.exists() and alive.exists() and unrelated.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_leftovers(tmp_path) == [str(alive)]  # its owner died


def test_this_process_holds_its_own_directory(tmp_path):
    mine = process_work_dir(tmp_path)
    assert mine.name.startswith(f"{PREFIX}{os.getpid()}-") and mine.parent == tmp_path.resolve()
    assert process_work_dir(tmp_path) == mine
    assert remove_leftovers(tmp_path) == []
    fd = os.open(mine / LOCK_NAME, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the directory's lock was free while its owner lives")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
