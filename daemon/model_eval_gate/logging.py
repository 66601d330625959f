"""Logs (JSON lines for machines, readable lines for people) and the log_tool_call audit decorator."""
from __future__ import annotations

import functools
import inspect
import json
import logging as stdlib_logging
import math
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

import structlog

from .safe_text import escape_log_values, truncate_log_values

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
LOG_FORMATS = ("auto", "console", "json")


def under_systemd(environ=None) -> bool:
    """True when systemd runs us (a service, or a journal-connected stream)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("JOURNAL_STREAM") or environ.get("INVOCATION_ID"))


def choose_format(requested: str, stream, environ=None) -> str:
    """`console` for a person at a terminal, `json` for journals, files, pipes and `--log-format json`."""
    if requested not in LOG_FORMATS:
        raise ValueError(f"unknown log format {requested!r}: choose one of {', '.join(LOG_FORMATS)}")
    if requested != "auto":
        return requested
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        interactive = False
    return "console" if interactive and not under_systemd(environ) else "json"


def configure_logging(level: str = "info", stream=None, fmt: str = "json") -> None:
    """JSON: one object per line, so `journalctl -o cat | jq` reads a gate's story.
    console: structlog's ConsoleRenderer, one readable line per event, for a terminal.
    """
    stream = stream or sys.stdout
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=_colors(stream),
                                                 exception_formatter=structlog.dev.plain_traceback)
        timestamper = structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False, key="timestamp")
    else:
        renderer = structlog.processors.JSONRenderer(default=str, sort_keys=False)
        timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *([] if fmt == "console" else [structlog.processors.format_exc_info]),
            # A 5 MB request reason must not become a 5 MB log line; on a
            # terminal, escape sequences in values are shown, not obeyed.
            truncate_log_values,
            *([escape_log_values] if fmt == "console" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (pgserver, psycopg) stay quiet below warnings.
    stdlib_logging.basicConfig(level=stdlib_logging.WARNING, stream=sys.stderr)


def _colors(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str | None = None, **bound: Any):
    return structlog.get_logger(name).bind(**bound) if bound else structlog.get_logger(name)


def _storable_text(text: str) -> str:
    # jsonb and text refuse NUL; UTF-8 refuses lone surrogates. Escape both visibly.
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(value: Any, fallback: Callable[[Any], str] = repr, depth: int = 0) -> Any:
    """A JSON value PostgreSQL's jsonb accepts, for the audit row of any call.

    A call with malformed input (NaN, a NUL character, a non-JSON object) is
    exactly the call worth auditing, so such values become strings (through
    fallback for non-JSON objects) instead of making the audit INSERT fail.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _storable_text(value)
    if depth > 64:  # deep or self-referencing structures
        return _storable_text(fallback(value)[:1000])
    if isinstance(value, (list, tuple)):
        return [_storable(item, fallback, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_storable_text(key if isinstance(key, str) else fallback(key)): _storable(item, fallback, depth + 1)
                for key, item in value.items()}
    return _storable_text(fallback(value))


def log_tool_call(tool_name: str | None = None, *, summarize: Callable[[Any], Any] | None = None,
                  persist: bool = True):
    """Record every call of the decorated tool in tool_calls: name, arguments, status, duration, error.

    The record is written on its own connection and committed whatever the
    tool did, so a failed call is audited too. A failure to write the audit
    row is logged, never raised over the tool's own result or error. With
    persist=False (tools promised to write nothing, like the quick gate) the
    same record goes to the log stream only.
    """

    def decorate(function):
        name = tool_name or function.__name__
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs)
            arguments = {
                key: _storable(value) for key, value in bound.arguments.items()
                if key not in ("settings", "conn")
            }
            started = datetime.now(timezone.utc)
            clock = time.perf_counter()
            settings = bound.arguments.get("settings")
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                _record(settings, name, arguments, "error", clock, started,
                        _storable_text(f"{type(exc).__name__}: {exc}"), None, persist)
                raise
            try:
                summary = _storable(summarize(result), str) if summarize else None
            except Exception as exc:  # a summary must not cost the caller its result
                summary = {"summary_failed": _storable_text(f"{type(exc).__name__}: {exc}")}
            _record(settings, name, arguments, "ok", clock, started, None, summary, persist)
            return result

        return wrapper

    return decorate


def _actor(arguments: dict) -> str | None:
    actor = arguments.get("actor") or arguments.get("requested_by")
    return None if actor is None else str(actor)


def _record(settings, name, arguments, status, clock, started, error, summary, persist=True) -> None:
    from . import db
    from .config import Settings

    duration_ms = (time.perf_counter() - clock) * 1000.0
    if not persist:
        structlog.get_logger(__name__).info("tool_call", tool=name, arguments=arguments, status=status,
                                            duration_ms=round(duration_ms, 3), error=error, result=summary)
        return
    try:
        with db.connect(settings or Settings.from_env(), autocommit=True) as conn:
            db.execute(conn, "record_tool_call", {
                "tool_name": name,
                "arguments": json.dumps(arguments, default=str),
                "status": status,
                "duration_ms": duration_ms,
                "error": error,
                "result_summary": json.dumps(summary, default=str) if summary is not None else None,
                "actor": _actor(arguments),
                "started_at": started,
            })
    except Exception as exc:  # the audit must not turn a result into a crash
        structlog.get_logger(__name__).error("tool_call_not_recorded", tool=name, error=str(exc))
