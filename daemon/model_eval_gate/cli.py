"""argparse front end: `model-eval-gate <command>`.

Exit codes: 0 success, 1 operational failure, 2 bad input (usage, invalid
metadata, invalid benchmark), 3 a gate verdict of error (for `gate`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, Settings
from .logging import configure_logging

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _settings() -> Settings:
    return Settings.from_env()


def cmd_db_url(args, settings: Settings) -> int:
    from .db import resolve_dsn

    print(resolve_dsn(settings))
    return EXIT_OK


def cmd_migrate(args, settings: Settings) -> int:
    from . import db, migrate

    dsn = db.resolve_dsn(settings)
    if args.status:
        with db.connect(dsn, autocommit=True) as conn:
            rows = migrate.status(conn)
        print(f"{'version':<8} {'name':<24} {'state':<8} applied_at")
        for row in rows:
            print(f"{row.version:04d}     {row.name:<24} {row.state:<8} {row.applied_at or '-'}")
        return EXIT_FAILURE if any(r.state in ("changed", "missing") for r in rows) else EXIT_OK
    if args.down_to is not None:
        if not args.yes:
            print("refusing to run down migrations without --yes: they drop tables and data", file=sys.stderr)
            return EXIT_BAD_INPUT
        reverted = migrate.downgrade(dsn, args.down_to)
        print("reverted: " + (", ".join(m.path.name for m in reverted) or "nothing"))
        return EXIT_OK
    applied = migrate.migrate(dsn)
    print("applied: " + ", ".join(m.path.name for m in applied) if applied else "database is up to date")
    return EXIT_OK


def cmd_register(args, settings: Settings) -> int:
    from .catalog import MetadataValidationError, load_registration_file, register_model

    try:
        payload = load_registration_file(args.file)
        artifact_id = register_model(payload, settings=settings)
    except MetadataValidationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(artifact_id)
    return EXIT_OK


def cmd_backfill(args, settings: Settings) -> int:
    from .catalog import backfill

    # The embedded default database stands in for the research platform, so it
    # is seeded with the platform's 8 legacy artifacts; a real host database
    # (DSN set) only gets them when asked with --legacy-fixture.
    load_fixture = args.legacy_fixture or not settings.dsn
    outcome = backfill(settings=settings, report_path=args.report, load_fixture=load_fixture)
    print(f"adopted {len(outcome.adopted)} legacy model artifact(s); {outcome.already_done} already had model_versions rows")
    print(f"migration report: {outcome.report_path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-eval-gate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("db-url", help="print the database URL (psql accepts it)")
    p.set_defaults(handler=cmd_db_url)

    p = sub.add_parser("migrate", help="apply pending SQL migrations")
    p.add_argument("--status", action="store_true", help="list applied and pending migrations")
    p.add_argument("--down-to", type=int, metavar="VERSION", help="run documented down migrations above VERSION")
    p.add_argument("--yes", action="store_true", help="confirm --down-to")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("register", help="register a candidate model version from a JSON file")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=cmd_register)

    p = sub.add_parser("backfill", help="give legacy model artifacts their model_versions rows (WS1)")
    p.add_argument("--report", type=Path, help="where to write the migration report "
                   "(default: ./docs/model_artifacts/migration_report_ws1.md)")
    p.add_argument("--legacy-fixture", action="store_true",
                   help="load the 8 legacy artifacts first (implied on the embedded database)")
    p.set_defaults(handler=cmd_backfill)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging(settings.log_level, stream=sys.stderr if args.command != "run" else None)
    try:
        return args.handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error, not a traceback, for operators
        from .migrate import MigrationError

        if isinstance(exc, (MigrationError,)):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    sys.exit(main())
