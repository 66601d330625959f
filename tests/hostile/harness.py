"""Shared scaffolding for the sandbox tests: a benchmark/model layout, tight
limits, a snapshot of everything outside /out, and a process finder.

Every eval.py used by the tests starts with PRELUDE, which parses the real
command line and gives the script `report(**observations)`: one JSON line on
stdout that the test reads back with `observations(result)`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import textwrap
from pathlib import Path

from model_eval_gate.sandbox import SandboxLimits, bwrap_available

MIB = 1024 * 1024

# Tight enough that the whole hostile suite runs in seconds on two busy cores.
TIGHT_LIMITS = SandboxLimits(
    wall_seconds=3.0,
    cpu_seconds=2,
    address_space_bytes=1024 * MIB,
    max_processes=32,
    max_file_bytes=2 * MIB,
    max_output_bytes=1 * MIB,
    max_output_files=100,
    tmp_bytes=4 * MIB,
    max_capture_bytes=16 * 1024,
)

# RLIMIT_NPROC is a per-uid budget: a fork bomb exhausts it for every process
# of that uid on the host. Hostile runs use a uid of their own (unique per
# test session, not 65534) so concurrent test sessions and real evaluations
# cannot starve each other.
ISOLATED_UID = 100_000 + os.getpid() % 50_000

LABEL_TOKEN = "LABEL-TOKEN-7f3a9c"
SENTINEL_TOKEN = "SENTINEL-SECRET-51e2d0"
REPORT_MARKER = "@@report@@"

PRELUDE = textwrap.dedent(
    f"""\
    import argparse, json, os, sys
    _parser = argparse.ArgumentParser()
    _parser.add_argument("--split", required=True)
    _parser.add_argument("--out", required=True)
    _parser.add_argument("extra", nargs="*")
    ARGS = _parser.parse_args()

    def report(**observations):
        print({REPORT_MARKER!r} + json.dumps(observations), flush=True)

    def attempt(action):
        # What happened when the sandboxed code tried something: "ok" or the error.
        try:
            value = action()
        except BaseException as exc:
            return "error: " + type(exc).__name__ + ": " + str(exc)
        return "ok" if value is None else "ok: " + str(value)[:200]
    """
)


def require_bubblewrap() -> None:
    """Fail (never skip) when the real dependency is missing."""
    assert bwrap_available(), (
        "bubblewrap (bwrap) is not installed: the sandbox tests need the real thing "
        "(apt install bubblewrap); they fail rather than skip without it"
    )


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path
    model_dir: Path
    benchmark_dir: Path
    split_dir: Path
    labels_path: Path
    sentinel_dir: Path
    sentinel_secret: Path
    work_dir: Path


def make_layout(root: Path, eval_body: str) -> Layout:
    """A model dir with eval.py (PRELUDE + body), a benchmark dir with inputs/ and
    labels.csv beside it, a sentinel dir with a secret, and a work dir for /out."""
    root.mkdir(parents=True, exist_ok=True)
    model_dir = root / "model"
    benchmark_dir = root / "benchmark"
    split_dir = benchmark_dir / "inputs"
    sentinel_dir = root / "sentinel"
    work_dir = root / "work"
    for directory in (model_dir, split_dir, sentinel_dir, work_dir):
        directory.mkdir(parents=True)
    (model_dir / "eval.py").write_text(PRELUDE + textwrap.dedent(eval_body))
    (split_dir / "features.csv").write_text("example_id,x\ne1,0.5\ne2,1.5\ne3,-0.25\n")
    labels_path = benchmark_dir / "labels.csv"
    labels_path.write_text(f"example_id,label\ne1,1\ne2,0\ne3,1\n# {LABEL_TOKEN}\n")
    sentinel_secret = sentinel_dir / "secret.txt"
    sentinel_secret.write_text(SENTINEL_TOKEN)
    # The sandbox uid must be able to read what it is given (and nothing more
    # is bound, so wide modes here expose nothing else).
    for directory in (root, model_dir, benchmark_dir, split_dir, sentinel_dir):
        directory.chmod(0o755)
    for path in (model_dir / "eval.py", split_dir / "features.csv", labels_path, sentinel_secret):
        path.chmod(0o644)
    return Layout(root, model_dir, benchmark_dir, split_dir, labels_path, sentinel_dir, sentinel_secret, work_dir)


def snapshot(root: Path, exclude: Path) -> dict[str, tuple]:
    """Type, mode, size, mtime and content hash of every entry under root but `exclude`."""
    state: dict[str, tuple] = {}
    for directory, dirnames, filenames in os.walk(root):
        if Path(directory) == exclude or exclude in Path(directory).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = Path(directory) / name
            if path == exclude:
                continue
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
            state[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return state


def processes_with(token: str) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line contains token."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry))
    return found


def observations(result) -> dict:
    """The JSON the sandboxed script reported, from the result's stdout."""
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(REPORT_MARKER):
            return json.loads(line[len(REPORT_MARKER):])
    raise AssertionError(f"eval.py reported nothing; stdout={result.stdout!r} stderr={result.stderr!r}")
