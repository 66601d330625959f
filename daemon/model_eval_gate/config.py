"""Settings: one frozen object read from the environment (MODEL_EVAL_GATE_*).

Everything configurable lives here so that a systemd EnvironmentFile can hold
a deployment's whole configuration, and so tests can build Settings directly.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

PREFIX = "MODEL_EVAL_GATE_"

#: MODEL_EVAL_GATE_POOLER: what sits between the gate and PostgreSQL.
#: "transaction" (PgBouncer pool_mode = transaction) and "session" turn off
#: server-side prepared statements; "transaction" also makes `migrate` refuse
#: (its advisory lock needs a session). The daemon verifies LISTEN itself.
POOLER_MODES = ("none", "session", "transaction")

# The sandbox's uids as root (docs/sandbox.md): the daemon's slots count down
# from DEFAULT_SANDBOX_UID, CLI and API gates use DEFAULT_DIRECT_SANDBOX_UID.
# Far above the ranges Debian and useradd allocate (system, users, subuids)
# and below systemd's container range (2147352576 and up).
DEFAULT_SANDBOX_UID = 2_100_000_000
DEFAULT_DIRECT_SANDBOX_UID = 2_100_001_000
MAX_WORKERS_PER_BLOCK = 1000

#: decision.MIN_BINDING_RESAMPLES (config imports nothing of the package).
MIN_BINDING_RESAMPLES = 1000


class ConfigError(ValueError):
    """A MODEL_EVAL_GATE_* variable holds a value we cannot use."""


SYSTEM_HOME = Path("/var/lib/model-eval-gate")


def default_home() -> Path:
    """Where the embedded database lives: the user's XDG data directory; /var/lib/model-eval-gate for root.

    As root, the embedded PostgreSQL runs as an unprivileged system user,
    which cannot enter root's 0700 home directory; /var/lib is where a
    system service keeps its state (the systemd unit uses the same place).
    """
    if os.geteuid() == 0:
        return SYSTEM_HOME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "model-eval-gate"


def _env(environ, name: str, default: str | None = None) -> str | None:
    value = environ.get(PREFIX + name)
    return default if value is None or value == "" else value


def _parse(environ, name: str, default, kind):
    raw = _env(environ, name)
    if raw is None:
        return default
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={raw!r} is not a valid {kind.__name__}") from None
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{PREFIX}{name}={raw!r} must not be negative")
    return value


_CAPABILITY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _capabilities(raw: str) -> tuple[str, ...]:
    names = tuple(sorted({part.strip().lower() for part in raw.split(",") if part.strip()}))
    bad = [name for name in names if not _CAPABILITY.match(name)]
    if bad:
        raise ConfigError(f"{PREFIX}WORKER_CAPABILITIES: {bad[0]!r} is not a capability name "
                          "(lower-case letters, digits, - and _; comma-separated, e.g. gpu)")
    return names


@dataclass(frozen=True)
class Settings:
    # Database: with no DSN the embedded PostgreSQL in `home` is used.
    dsn: str | None = None
    pooler: str = "none"  # one of POOLER_MODES
    home: Path = field(default_factory=default_home)
    artifact_root: Path | None = None  # default: home / "artifacts"
    log_level: str = "info"

    # Sandbox.
    allow_unsandboxed: bool = False
    sandbox_python: str | None = None  # default: the daemon's own interpreter
    bwrap_path: str | None = None  # default: bwrap found on PATH (or /usr/bin, /bin)
    # As root, worker slot i (from 0) runs models as uid sandbox_uid - i, and
    # gates run from the CLI or the Python API (model-eval-gate gate,
    # run_eval_gate) as direct_sandbox_uid, outside that block: RLIMIT_NPROC
    # counts per uid host-wide, so a fork bomb in one must not starve the
    # other. Not 65534 (nobody, shared with host services) nor anything a
    # distribution or /etc/subuid hands out. Give each daemon on one host its
    # own block.
    sandbox_uid: int = DEFAULT_SANDBOX_UID
    sandbox_gid: int = DEFAULT_SANDBOX_UID
    direct_sandbox_uid: int = DEFAULT_DIRECT_SANDBOX_UID
    eval_wall_seconds: float = 1800.0
    eval_cpu_seconds: int = 3600
    eval_memory_bytes: int = 8 * 1024**3  # per process (RLIMIT_AS)
    eval_sandbox_memory_bytes: int = 8 * 1024**3  # the whole sandbox (cgroup memory.max, or the sampled tree)
    eval_max_processes: int = 256
    eval_max_output_bytes: int = 512 * 1024**2
    # Where evaluations keep their output directories (default: the system
    # temporary directory). Put it on a size-limited filesystem to bound what
    # an unprivileged run can overshoot between two scans (docs/sandbox.md).
    work_dir: Path | None = None
    # A model directory is hashed in the daemon before it runs: bound it.
    model_max_bytes: int = 16 * 1024**3
    model_max_files: int = 10_000

    # Model environments (docs/environments.md): built with uv from binary
    # wheels into a content-addressed cache, bound read-only into the sandbox.
    env_cache_dir: Path | None = None  # default: home / "environments"
    env_index_url: str | None = None  # default: uv's (PyPI)
    env_wheelhouse: Path | None = None  # set: build offline from this directory of wheels only
    env_build_seconds: float = 900.0
    env_max_bytes: int = 4 * 1024**3
    env_cache_max_bytes: int = 20 * 1024**3

    # Statistics.
    n_resamples: int = 1000
    quick_resamples: int = 100

    # Holdout accounting (docs/model_promotion_policy.md, "Holdout accounting").
    # A split's query budget when its manifest declares none: 0 derives it
    # from the split's size (max(1000, n)).
    holdout_query_budget: int = 0
    # Rate limits per author and per lineage within the window; 0 = no limit.
    # Registrations count a candidate's first gate, re-gates every other
    # query (re-gate, dry run, quick run).
    rate_limit_window_seconds: float = 3600.0
    max_registrations_per_author: int = 1000
    max_registrations_per_lineage: int = 100
    max_regates_per_author: int = 200
    max_regates_per_lineage: int = 50

    # Daemon.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    workers: int = 1
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    sweep_seconds: float = 15.0
    keepalive_seconds: float = 30.0
    poll_only: bool = False
    max_attempts: int = 3
    retry_base_seconds: float = 5.0
    shutdown_grace_seconds: float = 30.0
    # What this daemon's worker slots offer (e.g. "gpu"); a job that needs a
    # capability is claimed only by a daemon that declares it.
    worker_capabilities: tuple[str, ...] = ()

    # Prometheus metrics of the daemon: off unless a port is set (0 picks a
    # free port, logged with the metrics_listening event).
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"

    @property
    def resolved_artifact_root(self) -> Path:
        return self.artifact_root if self.artifact_root is not None else self.home / "artifacts"

    @property
    def resolved_env_cache_dir(self) -> Path:
        return self.env_cache_dir if self.env_cache_dir is not None else self.home / "environments"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        environ = os.environ if environ is None else environ
        defaults = cls()
        home = _env(environ, "HOME")
        artifact_root = _env(environ, "ARTIFACT_ROOT")
        env_cache_dir = _env(environ, "ENV_CACHE_DIR")
        env_wheelhouse = _env(environ, "ENV_WHEELHOUSE")
        work_dir = _env(environ, "WORK_DIR")
        settings = cls(
            dsn=_env(environ, "DSN"),
            pooler=_env(environ, "POOLER", defaults.pooler).strip().lower(),
            home=Path(home).expanduser() if home else defaults.home,
            artifact_root=Path(artifact_root).expanduser() if artifact_root else None,
            log_level=_env(environ, "LOG_LEVEL", defaults.log_level).lower(),
            allow_unsandboxed=_parse(environ, "ALLOW_UNSANDBOXED", False, bool),
            sandbox_python=_env(environ, "SANDBOX_PYTHON"),
            work_dir=Path(work_dir).expanduser() if work_dir else None,
            bwrap_path=_env(environ, "BWRAP"),
            sandbox_uid=_parse(environ, "SANDBOX_UID", defaults.sandbox_uid, int),
            sandbox_gid=_parse(environ, "SANDBOX_GID", defaults.sandbox_gid, int),
            direct_sandbox_uid=_parse(environ, "DIRECT_SANDBOX_UID", defaults.direct_sandbox_uid, int),
            eval_wall_seconds=_parse(environ, "EVAL_WALL_SECONDS", defaults.eval_wall_seconds, float),
            eval_cpu_seconds=_parse(environ, "EVAL_CPU_SECONDS", defaults.eval_cpu_seconds, int),
            eval_memory_bytes=_parse(environ, "EVAL_MEMORY_BYTES", defaults.eval_memory_bytes, int),
            eval_sandbox_memory_bytes=_parse(environ, "EVAL_SANDBOX_MEMORY_BYTES", defaults.eval_sandbox_memory_bytes,
                                             int),
            eval_max_processes=_parse(environ, "EVAL_MAX_PROCESSES", defaults.eval_max_processes, int),
            eval_max_output_bytes=_parse(environ, "EVAL_MAX_OUTPUT_BYTES", defaults.eval_max_output_bytes, int),
            env_cache_dir=Path(env_cache_dir).expanduser() if env_cache_dir else None,
            env_index_url=_env(environ, "ENV_INDEX_URL"),
            env_wheelhouse=Path(env_wheelhouse).expanduser() if env_wheelhouse else None,
            env_build_seconds=_parse(environ, "ENV_BUILD_SECONDS", defaults.env_build_seconds, float),
            env_max_bytes=_parse(environ, "ENV_MAX_BYTES", defaults.env_max_bytes, int),
            env_cache_max_bytes=_parse(environ, "ENV_CACHE_MAX_BYTES", defaults.env_cache_max_bytes, int),
            model_max_bytes=_parse(environ, "MODEL_MAX_BYTES", defaults.model_max_bytes, int),
            model_max_files=_parse(environ, "MODEL_MAX_FILES", defaults.model_max_files, int),
            n_resamples=_parse(environ, "N_RESAMPLES", defaults.n_resamples, int),
            quick_resamples=_parse(environ, "QUICK_RESAMPLES", defaults.quick_resamples, int),
            holdout_query_budget=_parse(environ, "HOLDOUT_QUERY_BUDGET", defaults.holdout_query_budget, int),
            rate_limit_window_seconds=_parse(environ, "RATE_LIMIT_WINDOW_SECONDS",
                                             defaults.rate_limit_window_seconds, float),
            max_registrations_per_author=_parse(environ, "MAX_REGISTRATIONS_PER_AUTHOR",
                                                defaults.max_registrations_per_author, int),
            max_registrations_per_lineage=_parse(environ, "MAX_REGISTRATIONS_PER_LINEAGE",
                                                 defaults.max_registrations_per_lineage, int),
            max_regates_per_author=_parse(environ, "MAX_REGATES_PER_AUTHOR", defaults.max_regates_per_author, int),
            max_regates_per_lineage=_parse(environ, "MAX_REGATES_PER_LINEAGE", defaults.max_regates_per_lineage, int),
            worker_id=_env(environ, "WORKER_ID", defaults.worker_id),
            workers=_parse(environ, "WORKERS", defaults.workers, int),
            lease_seconds=_parse(environ, "LEASE_SECONDS", defaults.lease_seconds, float),
            heartbeat_seconds=_parse(environ, "HEARTBEAT_SECONDS", defaults.heartbeat_seconds, float),
            sweep_seconds=_parse(environ, "SWEEP_SECONDS", defaults.sweep_seconds, float),
            keepalive_seconds=_parse(environ, "KEEPALIVE_SECONDS", defaults.keepalive_seconds, float),
            poll_only=_parse(environ, "POLL_ONLY", False, bool),
            max_attempts=_parse(environ, "MAX_ATTEMPTS", defaults.max_attempts, int),
            retry_base_seconds=_parse(environ, "RETRY_BASE_SECONDS", defaults.retry_base_seconds, float),
            shutdown_grace_seconds=_parse(environ, "SHUTDOWN_GRACE_SECONDS", defaults.shutdown_grace_seconds, float),
            metrics_port=_parse(environ, "METRICS_PORT", None, int),
            metrics_address=_env(environ, "METRICS_ADDRESS", defaults.metrics_address),
            worker_capabilities=_capabilities(_env(environ, "WORKER_CAPABILITIES", "")),
        )
        if settings.pooler not in POOLER_MODES:
            raise ConfigError(f"{PREFIX}POOLER={settings.pooler!r} is not one of {', '.join(POOLER_MODES)}")
        if settings.workers < 1:
            raise ConfigError(f"{PREFIX}WORKERS must be at least 1")
        check_sandbox_uids(settings)
        # The binding count has the policy's floor (decision.MIN_BINDING_RESAMPLES, kept
        # in step by tests/test_policy_document.py); quick checks are advisory.
        if settings.n_resamples < MIN_BINDING_RESAMPLES:
            raise ConfigError(f"{PREFIX}N_RESAMPLES={settings.n_resamples} is below {MIN_BINDING_RESAMPLES}: binding "
                              f"verdicts need at least {MIN_BINDING_RESAMPLES} resamples (fewer are for "
                              f"{PREFIX}QUICK_RESAMPLES, the advisory check)")
        if settings.quick_resamples < 10:
            raise ConfigError(f"{PREFIX}QUICK_RESAMPLES must be at least 10")
        if settings.heartbeat_seconds >= settings.lease_seconds:
            raise ConfigError(f"{PREFIX}HEARTBEAT_SECONDS must be shorter than {PREFIX}LEASE_SECONDS")
        if settings.metrics_port is not None and settings.metrics_port > 65535:
            raise ConfigError(f"{PREFIX}METRICS_PORT={settings.metrics_port} is not a TCP port (0-65535)")
        return settings


def check_sandbox_uids(settings: Settings) -> None:
    """Refuse sandbox uids that would be root or share the daemon's block with CLI runs."""
    if settings.workers > MAX_WORKERS_PER_BLOCK:
        raise ConfigError(f"{PREFIX}WORKERS is at most {MAX_WORKERS_PER_BLOCK} (one sandbox uid per worker)")
    lowest = settings.sandbox_uid - settings.workers + 1
    for name, value in (("SANDBOX_UID", lowest), ("SANDBOX_GID", settings.sandbox_gid),
                        ("DIRECT_SANDBOX_UID", settings.direct_sandbox_uid)):
        if value <= 0 or value >= 2**32 - 1:
            raise ConfigError(f"{PREFIX}{name} gives uid/gid {value}; sandbox ids must be between 1 and 4294967294 "
                              "(never root)")
    if lowest <= settings.direct_sandbox_uid <= settings.sandbox_uid:
        raise ConfigError(
            f"{PREFIX}DIRECT_SANDBOX_UID={settings.direct_sandbox_uid} lies in the daemon's block "
            f"{lowest}..{settings.sandbox_uid} ({PREFIX}SANDBOX_UID minus the worker slots): CLI gates "
            "would share a process budget with a worker")
