"""What does the sandbox add to starting an eval.py?  Prints figures; asserts nothing.

    PYTHONPATH=daemon python benchmarks/bench_sandbox_startup.py [--runs 60]

Times, interleaved run by run so that drifting load hits every variant alike,
the start-up of a trivial eval.py (`pass`):

* the peer: a plain subprocess running `python -c pass` with the same
  interpreter, environment and captured pipes (no sandbox at all);
* the product: sandbox.run_eval_py plus discard_output, i.e. everything an
  evaluation pays for its sandbox (tool lookup, output directory and its
  tmpfs, bwrap, PID 1, the uid switch, the rlimits, supervision, clean-up);
* the decomposition of the product's command line, layer by layer, built
  from the same sandbox helpers the product uses: bwrap with its own init,
  then `setpriv` (as root), then `timeout` as PID 1, then the rlimits, held
  on --block-fd and set with prlimit(2) as run_eval_py does;
* the previous design, util-linux `prlimit` exec'd in front of bwrap, and an
  alternative measured but not adopted (docs/performance.md): a `sh` PID 1
  that sets the rlimits with `ulimit` and reaps the command (no `timeout`,
  but also no wall-time backstop);
* the output tmpfs mount and unmount alone (as root).

Medians in milliseconds, and each variant's overhead over the peer.  As root
the sandbox's root design runs (setpriv, a tmpfs /out); otherwise its
unprivileged design.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from model_eval_gate import sandbox  # noqa: E402
from model_eval_gate.config import DEFAULT_SANDBOX_UID  # noqa: E402
from model_eval_gate.sandbox import command as sandbox_command  # noqa: E402
from model_eval_gate.sandbox import outputs as sandbox_outputs  # noqa: E402
from model_eval_gate.sandbox import process as sandbox_process  # noqa: E402
from model_eval_gate.sandbox import resolve as sandbox_resolve  # noqa: E402

TARGET_OVERHEAD_MS = 10.0


def make_layout() -> tuple[Path, Path, Path]:
    """A world-readable temp tree (the sandbox uid must read it): model/eval.py and bench/inputs."""
    top = Path(tempfile.mkdtemp(prefix="meg-bench-sandbox-", dir="/tmp"))
    top.chmod(0o755)
    model, split = top / "model", top / "bench" / "inputs"
    model.mkdir()
    split.mkdir(parents=True)
    (model / "eval.py").write_text("pass\n")
    for directory in (model, split, split.parent):
        directory.chmod(0o755)
    (model / "eval.py").chmod(0o644)
    return top, model, split


def spawn_and_wait(argv: list[str], env: dict[str, str], cwd: str = "/") -> None:
    completed = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {completed.returncode}: {completed.stderr.decode()[-500:]}")


class CommandLines:
    """The product's command line for `python -c pass`, and its layers, from sandbox's own helpers."""

    def __init__(self, top: Path, model: Path, split: Path, limits: sandbox.SandboxLimits):
        self.root_mode = os.geteuid() == 0
        self.interpreter = sandbox_resolve._interpreter(sys.executable)
        self.tools = sandbox_resolve._resolve_tools(None, root_mode=self.root_mode, allow_unsandboxed=False)
        self.env = sandbox_command._sandbox_env(os.path.dirname(self.interpreter.executable))
        self.limits = limits
        out = Path(tempfile.mkdtemp(prefix="out-", dir=top))
        uid = DEFAULT_SANDBOX_UID
        if self.root_mode:
            os.chown(out, uid, uid)
        command = [self.interpreter.executable, "-c", "pass"]
        # Without the seccomp filter (a pipe bwrap reads once per run): these
        # command lines are spawned many times; the filter costs microseconds.
        full = sandbox_command._bwrap_argv(self.tools, command, self.env, self.interpreter, str(model), str(split),
                                   str(out), limits, uid, uid, self.root_mode)
        pid1 = full.index("--as-pid-1")
        timeout_at = full.index(self.tools.timeout)
        self.bwrap_options = full[:pid1]
        self.pid1_capabilities = full[pid1 + 1:timeout_at]
        self.timeout = full[timeout_at:timeout_at + 3]
        self.drop_uid = full[full.index(self.tools.setpriv):-len(command)] if self.root_mode else []
        self.command = command
        self.full = full
        self.prlimit = sandbox_command._prlimit_argv(sandbox_resolve._find_tool("prlimit", None), limits)

    def layers(self) -> dict[str, list[str]]:
        layers = {"bwrap, its own init": self.bwrap_options + self.command}
        if self.root_mode:
            layers["+ setpriv (uid switch)"] = self.bwrap_options + self.drop_uid + self.command
        layers["+ timeout as PID 1 (no limits)"] = self.full
        return layers

    def shell_pid1(self) -> list[str]:
        """Alternative: sh as PID 1 sets the rlimits with ulimit and reaps the command (no backstop)."""
        limits = self.limits
        ulimits = " && ".join([
            f"ulimit -t {limits.cpu_seconds}", f"ulimit -v {limits.address_space_bytes // 1024}",
            f"ulimit -p {limits.max_processes}", f"ulimit -f {limits.max_file_bytes // 512}", "ulimit -c 0",
        ])
        return self.bwrap_options + ["--as-pid-1"] + self.pid1_capabilities + \
            ["/bin/sh", "-c", ulimits + ' && "$@"; exit $?', "sh"] + self.drop_uid + self.command

    def run_held_for_limits(self) -> None:
        """The product's command line with its rlimits, set the product's way (sandbox_process._LimitHold)."""
        hold = sandbox_process._LimitHold(self.limits)
        process = subprocess.Popen(hold.argv(self.full), env=sandbox_resolve._BWRAP_ENV, cwd="/", stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=hold.child_fds,
                                   start_new_session=True)
        hold.spawned()
        try:
            refused = hold.release(process.pid, time.monotonic() + self.limits.wall_seconds, None)
            _, stderr = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            hold.close()
        if refused or process.returncode != 0:
            raise RuntimeError(f"bwrap exited {process.returncode} ({refused}): {stderr.decode()[-500:]}")


def summary_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs of every variant (interleaved)")
    args = parser.parse_args()
    if not sandbox.bwrap_available():
        print("bubblewrap (bwrap) is not installed: nothing to measure (apt install bubblewrap)")
        return 1

    top, model, split = make_layout()
    limits = sandbox.SandboxLimits(wall_seconds=60)
    try:
        lines = CommandLines(top, model, split, limits)
        peer_env = lines.env
        variants: dict[str, callable] = {
            "peer: python -c pass (no sandbox)": lambda: spawn_and_wait(lines.command, peer_env),
        }

        def product() -> None:
            with sandbox.run_eval_py(model, split, limits=limits, work_dir=top) as result:
                if not result.ok:
                    raise RuntimeError(f"the sandboxed eval.py failed: {result.error}\n{result.stderr}")

        variants["product: run_eval_py + discard_output"] = product
        for name, argv in lines.layers().items():
            variants[f"layers: {name}"] = (lambda a=argv: spawn_and_wait(a, sandbox_resolve._BWRAP_ENV))
        variants["layers: + rlimits held on --block-fd (the product's)"] = lines.run_held_for_limits
        variants["previous: prlimit exec'd in front of bwrap"] = \
            lambda: spawn_and_wait(lines.prlimit + lines.full, sandbox_resolve._BWRAP_ENV)
        variants["option: sh PID 1 with ulimit (no backstop)"] = \
            lambda: spawn_and_wait(lines.shell_pid1(), sandbox_resolve._BWRAP_ENV)
        if lines.root_mode:
            def tmpfs_cycle() -> None:
                out = sandbox_outputs._create_out_dir(top, limits, (DEFAULT_SANDBOX_UID,) * 2, bounded_by_tmpfs=True)
                sandbox.discard_output(out)
            variants["output tmpfs: mount + unmount + rmdir"] = tmpfs_cycle

        for run in variants.values():  # warm the page cache and the interpreter's imports
            run()
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
    finally:
        for leftover in top.glob("out-*"):
            sandbox.discard_output(leftover)
        shutil.rmtree(top, ignore_errors=True)

    mode = "root design (setpriv to the sandbox uid, tmpfs /out)" if lines.root_mode else "unprivileged design (user namespace)"
    print(f"sandbox start-up, {args.runs} interleaved runs each, medians; {os.cpu_count()} CPUs; {mode}")
    print(f"interpreter {lines.interpreter.executable}; "
          f"{subprocess.run(['bwrap', '--version'], capture_output=True, text=True).stdout.strip()}")
    print()
    peer = summary_ms(samples["peer: python -c pass (no sandbox)"])
    print(f"{'':52}{'median ms':>10}{'over peer':>11}")
    for name, values in samples.items():
        median = summary_ms(values)
        over = "" if name.startswith("peer") or name.startswith("output") else f"{median - peer:+10.2f}"
        print(f"{name:52}{median:10.2f}{over:>11}")
    product_overhead = summary_ms(samples["product: run_eval_py + discard_output"]) - peer
    paired = statistics.median(p - q for p, q in zip(samples["product: run_eval_py + discard_output"],
                                                     samples["peer: python -c pass (no sandbox)"])) * 1000
    print()
    print(f"sandbox overhead over the peer: {product_overhead:.2f} ms (median of paired differences "
          f"{paired:.2f} ms); target under {TARGET_OVERHEAD_MS:g} ms: "
          f"{'met' if product_overhead < TARGET_OVERHEAD_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
