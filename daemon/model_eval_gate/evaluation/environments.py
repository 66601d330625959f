"""Per-model Python environments: declared in the model directory, built once with uv.

A model declares its environment with two files in its directory:

- `requirements.txt`: a complete lock, one `name==version` per line (extras
  allowed), optionally with `--hash=sha256:...` on every line. Nothing else:
  no index options, no URLs, no local paths, no `-r`/`-c`/`-e`, so an author
  can neither choose where packages come from nor make the builder read a host
  file. Dependencies are not resolved (`--no-deps`): what is listed is what is
  installed, and a lock that misses a dependency is refused by `uv pip check`.
- `.python-version` (optional): `3.11` or `3.11.7`. The interpreter must
  already be on the host; the gate never downloads one.

No `requirements.txt`: the model runs with the default interpreter, as before.

The builder runs uv with `--no-build`, so only binary wheels are installed and
no code of the model's choosing runs at install time (a wheel is unpacked,
never executed). The environment's own interpreter is never run on the host,
only inside the sandbox, because a wheel can carry a `.pth` file that Python
executes at start-up. Environments live in a content-addressed cache:
`<cache>/<key>/`, where the key hashes the normalised lock, the interpreter's
version and the platform; a finished environment is renamed into place
atomically and never modified, and a per-key file lock makes concurrent
workers build it once.
"""
from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_VERSION_FILE = ".python-version"
ENVIRONMENT_RECORD = "environment.json"
KEY_FORMAT = 1  # bump when the layout or the build options change what a key means

_MAX_DECLARATION_BYTES = 256 * 1024
_MAX_REQUIREMENTS = 500
_LOG_TAIL_CHARS = 4000

# PEP 508 names, PEP 440 versions (a strict subset good for pins).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_EXTRAS = rf"(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?"
_VERSION = r"[0-9][A-Za-z0-9.+!_-]*"
_HASH = r"--hash=sha256:[0-9a-fA-F]{64}"
_PIN = re.compile(rf"^({_NAME})\s*({_EXTRAS})\s*==\s*({_VERSION})((?:\s+{_HASH})*)$")
_PYTHON_VERSION = re.compile(r"^3\.[0-9]{1,2}(?:\.[0-9]{1,3})?$")


class ModelEnvironmentError(RuntimeError):
    """A declared environment that cannot be used; `kind` says why, the message says how to fix it."""

    def __init__(self, kind: str, message: str, *, log_tail: str | None = None):
        self.kind = kind  # "invalid", "python_unavailable", "build_failed", "too_large"
        self.log_tail = log_tail
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Requirement:
    name: str  # normalised (PEP 503)
    extras: tuple[str, ...]
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        hashes = "".join(f" --hash=sha256:{h}" for h in self.hashes)
        return f"{self.name}{extras}=={self.version}{hashes}"


@dataclasses.dataclass(frozen=True)
class Declaration:
    requirements: tuple[Requirement, ...]
    python_version: str | None  # as declared, or None for the default interpreter's

    @property
    def hashed(self) -> bool:
        return all(r.hashes for r in self.requirements)

    def lock_text(self) -> str:
        """The normalised lock: sorted, one requirement per line, what the builder installs."""
        return "".join(r.line() + "\n" for r in self.requirements)


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """A trusted host interpreter an environment is built on (never the environment's own)."""

    executable: str
    version: str  # e.g. 3.11.7
    implementation: str  # e.g. cpython
    platform: str  # e.g. linux-x86_64 plus the ABI flags


@dataclasses.dataclass(frozen=True)
class Environment:
    """A built environment, ready to bind into the sandbox read-only."""

    key: str
    path: Path
    interpreter: Interpreter
    built: bool  # True when this call built it, False on a cache hit
    build_seconds: float
    log_tail: str

    def summary(self) -> dict:
        return {"hash": self.key, "python": self.interpreter.version, "built": self.built,
                "build_seconds": round(self.build_seconds, 3), "cache_hit": not self.built,
                **({"build_log_tail": self.log_tail} if self.built and self.log_tail else {})}


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    cache_dir: Path
    index_url: str | None = None  # None: uv's default (PyPI)
    wheelhouse: Path | None = None  # set: offline, only wheels from this directory
    build_seconds: float = 900.0
    max_bytes: int = 4 * 1024**3
    cache_max_bytes: int = 20 * 1024**3
    default_python: str | None = None  # None: the daemon's own base interpreter

    @classmethod
    def from_settings(cls, settings) -> "BuildSettings":
        return cls(
            cache_dir=settings.resolved_env_cache_dir, index_url=settings.env_index_url,
            wheelhouse=settings.env_wheelhouse, build_seconds=settings.env_build_seconds,
            max_bytes=settings.env_max_bytes, cache_max_bytes=settings.env_cache_max_bytes,
            default_python=settings.sandbox_python,
        )


# --- the declaration ---------------------------------------------------------------------

def read_declaration(model_dir: str | os.PathLike[str]) -> Declaration | None:
    """The model's declared environment, None when it declares none."""
    directory = Path(model_dir)
    requirements_path = directory / REQUIREMENTS_FILE
    if not os.path.lexists(requirements_path):
        if os.path.lexists(directory / PYTHON_VERSION_FILE):
            raise ModelEnvironmentError(
                "invalid", f"{PYTHON_VERSION_FILE} without {REQUIREMENTS_FILE}: declare the packages too "
                "(an empty requirements.txt means no packages)")
        return None
    text = _read_small_text(requirements_path)
    python_version = None
    if os.path.lexists(directory / PYTHON_VERSION_FILE):
        python_version = _read_small_text(directory / PYTHON_VERSION_FILE).strip()
        if not _PYTHON_VERSION.match(python_version):
            raise ModelEnvironmentError(
                "invalid", f"{PYTHON_VERSION_FILE} says {python_version[:40]!r}; write a version such as 3.11 or 3.11.7")
    return Declaration(requirements=parse_requirements(text), python_version=python_version)


def _read_small_text(path: Path) -> str:
    # lstat, not stat: the file must be a regular file of the model's own, not a link to a host file.
    info = os.lstat(path)
    if not os.path.isfile(path) or os.path.islink(path):
        raise ModelEnvironmentError("invalid", f"{path.name} must be a regular file, not a link or a directory")
    if info.st_size > _MAX_DECLARATION_BYTES:
        raise ModelEnvironmentError("invalid", f"{path.name} is {info.st_size} bytes; at most {_MAX_DECLARATION_BYTES}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelEnvironmentError("invalid", f"{path.name} is not UTF-8 text") from None


def parse_requirements(text: str) -> tuple[Requirement, ...]:
    """Parse a pinned lock; refuse anything that is not `name[extras]==version [--hash=sha256:...]`."""
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            logical.append((start, line))
    if pending.strip():
        logical.append((start, pending.strip()))
    requirements: dict[str, Requirement] = {}
    for number, line in logical:
        match = _PIN.match(line)
        if not match:
            raise ModelEnvironmentError(
                "invalid", f"{REQUIREMENTS_FILE} line {number}: {_shorten(line)!r} is not a pin of the form "
                "name==version [--hash=sha256:...]; options, URLs, paths and ranges are not allowed "
                "(generate the file with `uv pip compile --generate-hashes`)")
        name = _normalise(match.group(1))
        extras = tuple(sorted(_normalise(e) for e in re.findall(_NAME, match.group(2) or "")))
        hashes = tuple(sorted(h.lower() for h in re.findall(r"sha256:([0-9a-fA-F]{64})", match.group(4) or "")))
        if name in requirements:
            raise ModelEnvironmentError("invalid", f"{REQUIREMENTS_FILE} line {number}: {name} is pinned twice")
        requirements[name] = Requirement(name=name, extras=extras, version=match.group(3), hashes=hashes)
    if len(requirements) > _MAX_REQUIREMENTS:
        raise ModelEnvironmentError("invalid", f"{REQUIREMENTS_FILE} pins {len(requirements)} packages; at most {_MAX_REQUIREMENTS}")
    pinned = tuple(requirements[name] for name in sorted(requirements))
    if any(r.hashes for r in pinned) and not all(r.hashes for r in pinned):
        missing = [r.name for r in pinned if not r.hashes]
        raise ModelEnvironmentError(
            "invalid", f"{REQUIREMENTS_FILE} has hashes for some packages but not for {', '.join(missing[:5])}; "
            "hash every line or none")
    return pinned


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- the interpreter and the key -----------------------------------------------------------

def base_interpreter(default_python: str | None = None) -> str:
    """The trusted interpreter environments are built on: the configured one or the daemon's base."""
    if default_python:
        return default_python
    # The daemon may itself run in a virtualenv; environments build on the
    # interpreter underneath it, whose prefix the sandbox binds read-only.
    return getattr(sys, "_base_executable", None) or sys.executable


def resolve_interpreter(declaration: Declaration, default_python: str | None = None) -> Interpreter:
    """The host interpreter that satisfies the declared Python version (never downloaded)."""
    default = describe_interpreter(base_interpreter(default_python))
    wanted = declaration.python_version
    if wanted is None or _version_matches(default.version, wanted):
        return default
    found = _uv(["python", "find", "--no-python-downloads", "--no-config", wanted], timeout=60)
    if found.returncode != 0 or not found.stdout.strip():
        raise ModelEnvironmentError(
            "python_unavailable", f"the model asks for Python {wanted} ({PYTHON_VERSION_FILE}) and this host has "
            f"none (default {default.version}); an operator installs it, or the model declares {default.version}")
    interpreter = describe_interpreter(found.stdout.strip().splitlines()[-1])
    if not _version_matches(interpreter.version, wanted):
        raise ModelEnvironmentError(
            "python_unavailable", f"uv found {interpreter.executable} ({interpreter.version}) for Python {wanted}")
    return interpreter


def _version_matches(actual: str, wanted: str) -> bool:
    return actual == wanted or actual.startswith(wanted + ".")


@functools.lru_cache(maxsize=16)
def describe_interpreter(executable: str) -> Interpreter:
    """Ask a trusted host interpreter (never a model environment's) what it is."""
    code = ("import json, sys, sysconfig\n"
            "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
            " 'implementation': sys.implementation.name,"
            " 'platform': sysconfig.get_platform() + '/' + (sysconfig.get_config_var('SOABI') or ''),"
            " 'executable': sys.executable}))")
    try:
        completed = subprocess.run([executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                                   timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
        facts = json.loads(completed.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise ModelEnvironmentError("python_unavailable", f"interpreter {executable} cannot be run: {exc}") from exc
    return Interpreter(executable=executable, version=facts["version"],
                       implementation=facts["implementation"], platform=facts["platform"])


def environment_key(declaration: Declaration, interpreter: Interpreter) -> str:
    """The content address: the lock, the interpreter's version and the platform."""
    material = json.dumps({
        "format": KEY_FORMAT, "lock": declaration.lock_text(), "implementation": interpreter.implementation,
        "python": interpreter.version, "platform": interpreter.platform,
    }, sort_keys=True).encode()
    return hashlib.sha256(material).hexdigest()[:32]


# --- building ----------------------------------------------------------------------------------

def uv_binary() -> str:
    """uv from its PyPI package (a dependency), or one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
        raise ModelEnvironmentError("build_failed", "uv is not installed; `pip install uv` in the daemon's environment") from None


# The operator's network settings reach uv (a proxy, a corporate CA); nothing
# else of the daemon's environment does, so no uv.toml, UV_INDEX_URL or
# credentials of the host change what a lock resolves to.
_NETWORK_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                        "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_NATIVE_TLS",
                        "UV_HTTP_TIMEOUT")


def _uv(args: list[str], *, timeout: float, env: dict[str, str] | None = None,
        cwd: str | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "UV_PYTHON_DOWNLOADS": "never",
                   "UV_NO_PROGRESS": "1", "NO_COLOR": "1",
                   **{name: os.environ[name] for name in _NETWORK_ENVIRONMENT if name in os.environ},
                   **(env or {})}
    try:
        return subprocess.run([uv_binary(), *args], capture_output=True, text=True, timeout=timeout,
                              env=environment, cwd=cwd or "/", check=False, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise ModelEnvironmentError("build_failed", f"uv {args[0]} {args[1] if len(args) > 1 else ''} took longer than "
                                f"{timeout:g} s (MODEL_EVAL_GATE_ENV_BUILD_SECONDS)",
                                log_tail=_tail(exc.stderr)) from None


@dataclasses.dataclass(frozen=True)
class EnvironmentPlan:
    """What a model's declaration resolves to on this host, before anything is built."""

    declaration: Declaration
    interpreter: Interpreter
    key: str


def plan_environment(model_dir: str | os.PathLike[str], build: BuildSettings) -> EnvironmentPlan | None:
    """The model's environment key and interpreter (cheap: nothing is built); None when it declares none."""
    declaration = read_declaration(model_dir)
    if declaration is None:
        return None
    interpreter = resolve_interpreter(declaration, build.default_python)
    return EnvironmentPlan(declaration=declaration, interpreter=interpreter,
                           key=environment_key(declaration, interpreter))


def ensure_environment(plan: EnvironmentPlan, build: BuildSettings) -> Environment:
    """The planned environment, built if it is not in the cache yet."""
    declaration, interpreter, key = plan.declaration, plan.interpreter, plan.key
    cache = Path(build.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)  # the sandbox uid reads environments through it
    target = cache / key
    started = time.perf_counter()
    with _locked(cache / f".{key}.lock"):
        if (target / ENVIRONMENT_RECORD).is_file():
            _touch(target)
            return Environment(key=key, path=target, interpreter=interpreter, built=False,
                               build_seconds=time.perf_counter() - started, log_tail="")
        log_tail = _build(declaration, interpreter, key, target, build)
    seconds = time.perf_counter() - started
    log.info("environment.built", environment=key, python=interpreter.version,
             packages=len(declaration.requirements), seconds=round(seconds, 3))
    prune(build, keep={key})
    return Environment(key=key, path=target, interpreter=interpreter, built=True,
                       build_seconds=seconds, log_tail=log_tail)


class _locked:
    """An exclusive flock on `path`: one builder per key across every worker on this host."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _build(declaration: Declaration, interpreter: Interpreter, key: str, target: Path,
           build: BuildSettings) -> str:
    cache = target.parent
    staging = cache / f".building-{key}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    lock_file = cache / f".{key}.requirements.txt"
    lock_file.write_text(declaration.lock_text(), encoding="utf-8")
    uv_env = {"UV_CACHE_DIR": str(cache / ".uv-cache"), "HOME": str(cache)}
    transcript: list[str] = []
    deadline = time.monotonic() + build.build_seconds

    def step(args: list[str]) -> subprocess.CompletedProcess:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ModelEnvironmentError("build_failed", f"the environment build took longer than {build.build_seconds:g} s "
                                    "(MODEL_EVAL_GATE_ENV_BUILD_SECONDS)", log_tail=_tail("\n".join(transcript)))
        completed = _uv(args, timeout=remaining, env=uv_env, cwd=str(cache))
        transcript.append(f"$ uv {' '.join(args)}\n{completed.stdout}{completed.stderr}")
        return completed

    try:
        created = step(["venv", "--no-config", "--relocatable", "--quiet", "--python", interpreter.executable,
                        str(staging)])
        if created.returncode != 0:
            raise ModelEnvironmentError("build_failed", f"uv could not create a virtual environment on "
                                    f"{interpreter.executable}: {_last_line(created.stderr)}",
                                    log_tail=_tail("\n".join(transcript)))
        install = ["pip", "install", "--no-config", "--python", str(staging / "bin" / "python"),
                   "--no-build", "--no-deps", "--link-mode", "copy", "-r", str(lock_file)]
        if declaration.hashed:
            install.append("--require-hashes")
        if build.wheelhouse is not None:
            install += ["--offline", "--no-index", "--find-links", str(build.wheelhouse)]
        elif build.index_url:
            install += ["--index-url", build.index_url]
        if declaration.requirements:
            installed = step(install)
            if installed.returncode != 0:
                raise ModelEnvironmentError("build_failed", _explain_install_failure(installed.stderr),
                                        log_tail=_tail("\n".join(transcript)))
            checked = step(["pip", "check", "--no-config", "--python", str(staging / "bin" / "python")])
            if checked.returncode != 0:
                raise ModelEnvironmentError(
                    "build_failed", "requirements.txt is not a complete lock: "
                    f"{_last_line(checked.stdout + checked.stderr)}; pin every dependency "
                    "(`uv pip compile --generate-hashes` writes one)", log_tail=_tail("\n".join(transcript)))
            _compile_bytecode(interpreter, staging, deadline)
        size = _tree_bytes(staging)
        if size > build.max_bytes:
            raise ModelEnvironmentError("too_large", f"the environment is {size / 1024**2:.0f} MiB; at most "
                                    f"{build.max_bytes / 1024**2:.0f} MiB (MODEL_EVAL_GATE_ENV_MAX_BYTES)")
        record = {"key": key, "python": interpreter.version, "implementation": interpreter.implementation,
                  "platform": interpreter.platform, "base_interpreter": interpreter.executable,
                  "requirements": [r.line() for r in declaration.requirements],
                  "hashed": declaration.hashed, "size_bytes": size, "built_at": time.time(),
                  "source": (f"wheelhouse {build.wheelhouse}" if build.wheelhouse else build.index_url or "default index")}
        (staging / ENVIRONMENT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (cache / f"{key}.build.log").write_text("\n".join(transcript), encoding="utf-8")
        _make_world_readable(staging)
        if target.exists():  # a half-removed earlier attempt: never reused, never merged into
            shutil.rmtree(target)
        os.rename(staging, target)
        return _tail("\n".join(transcript))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        lock_file.unlink(missing_ok=True)


def _compile_bytecode(interpreter: Interpreter, staging: Path, deadline: float) -> None:
    """Byte-compile the environment with the trusted base interpreter, never the environment's own.

    The sandbox is read-only and runs with PYTHONDONTWRITEBYTECODE, so without
    this every evaluation would compile scikit-learn and scipy from source
    again (`import sklearn.ensemble` took 3.9 s of CPU uncompiled, 1.4 s compiled).
    `-I -S` keeps site-packages and their .pth files out of the compiler's
    own start-up; compileall only compiles, it imports nothing it compiles.
    """
    site_packages = sorted(staging.glob("lib/python*/site-packages"))
    if not site_packages:
        return
    try:
        completed = subprocess.run(
            [interpreter.executable, "-I", "-S", "-m", "compileall", "-q", "-j", "2", *map(str, site_packages)],
            capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()),
            env={"PATH": "/usr/bin:/bin"}, check=False)
    except subprocess.TimeoutExpired:
        raise ModelEnvironmentError("build_failed", "byte-compiling the environment took longer than the build "
                                    "limit (MODEL_EVAL_GATE_ENV_BUILD_SECONDS)") from None
    # A file that does not compile (a test fixture in a wheel, Python 2 code)
    # is not an error: it only stays uncompiled, as pip leaves it.
    if completed.returncode not in (0, 1):
        raise ModelEnvironmentError("build_failed", f"byte-compiling the environment failed: "
                                    f"{_last_line(completed.stderr)}")


def _explain_install_failure(stderr: str) -> str:
    text = stderr.strip()
    lowered = text.lower()
    if "--no-build" in lowered or "source distribution" in lowered or "building source" in lowered:
        package = re.search(r"`([A-Za-z0-9._-]+)(?:==[^`]*)?`", text)
        name = package.group(1) if package else "a requirement"
        return (f"{name} has no binary wheel for this platform and the gate never builds from source "
                "(no model code runs at install time); pin a version that ships a wheel")
    if "hash mismatch" in lowered or "hashes" in lowered and "mismatch" in lowered:
        return f"a downloaded wheel does not match its --hash in requirements.txt: {_last_line(text)}"
    return f"uv could not install the requirements: {_last_line(text)}"


_UV_CHATTER = ("hint:", "help:", "Using Python", "Checked ", "Found ", "Resolved ", "Prepared ", "Installed ",
               "Audited ", "Downloading ", "Downloaded ", "Built ")


def _last_line(text: str) -> str:
    """uv's own words for what went wrong, without its progress lines."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(_UV_CHATTER)]
    chosen = " ".join((meaningful or lines)[:3])
    return _shorten(chosen, 400) if chosen else "no message"


def _tail(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-_LOG_TAIL_CHARS:]


def _make_world_readable(root: Path) -> None:
    # The model runs as an unprivileged uid that must read (never write) the environment.
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.lstat(path).st_mode
                os.chmod(path, 0o755 if mode & 0o111 else 0o644)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def _touch(path: Path) -> None:
    try:
        os.utime(path / ENVIRONMENT_RECORD)
    except OSError:
        pass


# --- the cache -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CachedEnvironment:
    key: str
    path: Path
    python: str
    packages: tuple[str, ...]
    size_bytes: int
    built_at: float
    last_used_at: float


def list_environments(cache_dir: str | os.PathLike[str]) -> list[CachedEnvironment]:
    """Every finished environment in the cache, most recently used first."""
    cache = Path(cache_dir)
    found = []
    if not cache.is_dir():
        return found
    for entry in cache.iterdir():
        record_path = entry / ENVIRONMENT_RECORD
        if entry.name.startswith(".") or not record_path.is_file():
            continue
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(CachedEnvironment(
            key=entry.name, path=entry, python=record.get("python", "?"),
            packages=tuple(record.get("requirements", ())), size_bytes=int(record.get("size_bytes", 0)),
            built_at=float(record.get("built_at", 0)), last_used_at=record_path.stat().st_mtime,
        ))
    return sorted(found, key=lambda e: e.last_used_at, reverse=True)


def prune(build: BuildSettings, *, keep: set[str] = frozenset(), older_than_seconds: float | None = None,
          dry_run: bool = False) -> list[CachedEnvironment]:
    """Remove least recently used environments until the cache fits its cap (and any older than asked).

    An environment is removed under its build lock, so a worker that is about
    to use it either finds it whole or builds it again.
    """
    environments = list_environments(build.cache_dir)
    total = sum(e.size_bytes for e in environments)
    now = time.time()
    removed = []
    for environment in reversed(environments):  # least recently used first
        too_old = older_than_seconds is not None and now - environment.last_used_at > older_than_seconds
        if environment.key in keep or not (total > build.cache_max_bytes or too_old):
            continue
        if not dry_run:
            with _locked(Path(build.cache_dir) / f".{environment.key}.lock"):
                doomed = environment.path.with_name(f".removing-{environment.key}-{os.getpid()}")
                os.rename(environment.path, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                (Path(build.cache_dir) / f"{environment.key}.build.log").unlink(missing_ok=True)
        total -= environment.size_bytes
        removed.append(environment)
    return removed
