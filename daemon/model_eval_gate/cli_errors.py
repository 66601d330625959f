"""Turn any failure of a CLI command into one line a person can act on, and an exit status.

No traceback reaches a CLI user: every exception a command lets escape is
explained here as `error: <what went wrong>: <what to do>` (or `refused: ...`
for a request the system declines). An exception nobody anticipated is a bug;
it is still one line, with `--traceback` as the way to see where it came from.

Exit codes (the same for every command): 0 success, 1 operational failure
(database unreachable, server cannot start, a bug), 2 bad input or a database
that must be migrated first, 3 a gate verdict of error (`gate` only),
130 interrupted.
"""
from __future__ import annotations

from urllib.parse import urlsplit

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_GATE_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

MIGRATE_HINT = "run `model-eval-gate migrate` first"


class CliError(Exception):
    """A command's clean refusal: printed as is (one line), exit status exit_code.

    Commands raise it instead of printing and returning, so that every
    command's errors look alike: `raise CliError("refused: ...", EXIT_BAD_INPUT)`.
    """

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


class NotMigrated(CliError):
    """The database lacks model-eval-gate's tables, or some of its migrations."""


def one_line(text: object) -> str:
    """A message flattened to one line (PostgreSQL's are often several)."""
    return " ".join(str(text).split())


def describe_database(settings) -> str:
    """Where the database is, without a password: for messages that must say which one failed."""
    if settings is None:
        return "the database"
    if not settings.dsn:
        return f"the embedded database in {settings.home}"
    dsn = settings.dsn
    if "://" in dsn:
        parts = urlsplit(dsn)
        host = parts.hostname or "local socket"
        return f"the database {parts.path.lstrip('/') or '(default)'} on {host} (MODEL_EVAL_GATE_DSN)"
    return "the database of MODEL_EVAL_GATE_DSN"


def explain(exc: BaseException, settings=None) -> tuple[str, int]:
    """(one line, exit status) for an exception that escaped a command."""
    import psycopg

    from .benchmark import BenchmarkError
    from .config import ConfigError
    from .embedded import EmbeddedDatabaseError
    from .migrate import HostSchemaIncompatible, MigrationError

    where = describe_database(settings)
    if isinstance(exc, HostSchemaIncompatible):
        # One message, one line per problem: a DBA works through it as a list.
        return f"error: refusing to migrate: {exc}", EXIT_FAILURE
    if isinstance(exc, CliError):
        return one_line(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}", EXIT_BAD_INPUT
    if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction,
                        psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject)):
        missing = one_line(exc.diag.message_primary or exc)
        return (f"error: {where} is not migrated to this version of model-eval-gate ({missing}): "
                f"{MIGRATE_HINT}"), EXIT_BAD_INPUT
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return (f"error: {where} refused the operation: {one_line(exc.diag.message_primary or exc)} "
                "(the database role lacks a privilege; see docs/operations.md)"), EXIT_FAILURE
    if isinstance(exc, (psycopg.errors.CheckViolation, psycopg.errors.NoDataFound)):
        message = one_line(exc.diag.message_primary or exc).removeprefix("model_eval_gate: ")
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        return f"refused: {message}{hint}", EXIT_BAD_INPUT
    if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)):
        return f"refused by {where}: {one_line(exc.diag.message_primary or exc)}", EXIT_BAD_INPUT
    if isinstance(exc, psycopg.OperationalError):
        return (f"error: cannot reach {where}: {_first_line(exc)} "
                f"({_connection_hint(settings)})"), EXIT_FAILURE
    if isinstance(exc, psycopg.Error):
        return f"error: {where}: {one_line(exc.diag.message_primary or exc)}", EXIT_FAILURE
    if isinstance(exc, (EmbeddedDatabaseError, MigrationError)):
        return f"error: {one_line(exc)}", EXIT_FAILURE
    if isinstance(exc, BenchmarkError):
        return f"error: {one_line(exc)}", EXIT_BAD_INPUT
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return f"error: {exc.filename or ''}: {exc.strerror or exc}".replace("error: : ", "error: "), EXIT_BAD_INPUT
    if isinstance(exc, PermissionError):
        return f"error: permission denied: {exc.filename or exc}", EXIT_FAILURE
    if isinstance(exc, OSError):
        return f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), EXIT_FAILURE
    return (f"internal error: {type(exc).__name__}: {one_line(exc)[:500]} (a bug in model-eval-gate: "
            "rerun with --traceback and report what it prints)"), EXIT_FAILURE


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _connection_hint(settings) -> str:
    if settings is not None and not settings.dsn:
        return "is the embedded server running? `model-eval-gate db status` says"
    return "check MODEL_EVAL_GATE_DSN, or unset it to use the embedded PostgreSQL"
