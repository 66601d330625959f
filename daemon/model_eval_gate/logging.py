"""structlog JSON lines on stdout, and the log_tool_call audit decorator."""
from __future__ import annotations

import functools
import inspect
import json
import logging as stdlib_logging
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def configure_logging(level: str = "info", stream=None) -> None:
    """One JSON object per line, so `journalctl -o cat | jq` reads a gate's story."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str, sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (pgserver, psycopg) stay quiet below warnings.
    stdlib_logging.basicConfig(level=stdlib_logging.WARNING, stream=sys.stderr)


def get_logger(name: str | None = None, **bound: Any):
    return structlog.get_logger(name).bind(**bound) if bound else structlog.get_logger(name)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def log_tool_call(tool_name: str | None = None, *, summarize: Callable[[Any], Any] | None = None):
    """Record every call of the decorated tool in tool_calls: name, arguments, status, duration, error.

    The record is written on its own connection and committed whatever the
    tool did, so a failed call is audited too. A failure to write the audit
    row is logged, never raised over the tool's own result or error.
    """

    def decorate(function):
        name = tool_name or function.__name__
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs)
            arguments = {
                key: _jsonable(value) for key, value in bound.arguments.items()
                if key not in ("settings", "conn")
            }
            started = datetime.now(timezone.utc)
            clock = time.perf_counter()
            settings = bound.arguments.get("settings")
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                _record(settings, name, arguments, "error", clock, started, f"{type(exc).__name__}: {exc}", None)
                raise
            summary = summarize(result) if summarize else None
            _record(settings, name, arguments, "ok", clock, started, None, summary)
            return result

        return wrapper

    return decorate


def _record(settings, name, arguments, status, clock, started, error, summary) -> None:
    from . import db
    from .config import Settings

    duration_ms = (time.perf_counter() - clock) * 1000.0
    try:
        with db.connect(settings or Settings.from_env(), autocommit=True) as conn:
            db.execute(conn, "record_tool_call", {
                "tool_name": name,
                "arguments": json.dumps(arguments, default=str),
                "status": status,
                "duration_ms": duration_ms,
                "error": error,
                "result_summary": json.dumps(summary, default=str) if summary is not None else None,
                "actor": arguments.get("actor") or arguments.get("requested_by"),
                "started_at": started,
            })
    except Exception as exc:  # the audit must not turn a result into a crash
        structlog.get_logger(__name__).error("tool_call_not_recorded", tool=name, error=str(exc))
