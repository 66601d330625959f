"""The `model-eval-gate` command line.

Every command is a `cmd_<name>(args, settings) -> int` registered in
build_parser(). A command prints its results on stdout and lets failures
escape (or raises CliError for a clean refusal): main() turns every exception
into one line on stderr and an exit status (cli_errors.py), so no traceback
ever reaches a user. Commands that need model-eval-gate's tables are checked
first (set_defaults(needs_schema=False) opts a command out).

Exit codes: 0 success, 1 operational failure, 2 bad input or an unmigrated
database, 3 a gate verdict of error (for `gate`), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timezone
from pathlib import Path

from .cli_errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_GATE_ERROR,
    EXIT_OK,
    MIGRATE_HINT,
    CliError,
    NotMigrated,
    describe_database,
    explain,
)
from .config import Settings
from .logging import LOG_FORMATS, choose_format, configure_logging

__all__ = ["main", "build_parser", "CliError", "EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "EXIT_GATE_ERROR"]


def _settings() -> Settings:
    return Settings.from_env()


def cmd_db_url(args, settings: Settings) -> int:
    from .db import resolve_dsn

    print(resolve_dsn(settings))
    return EXIT_OK


def cmd_db_status(args, settings: Settings) -> int:
    """Where the database is and whether it runs; exit 0 running, 3 not running (like pg_ctl status)."""
    from . import embedded

    if settings.dsn:
        print(f"database   {describe_database(settings)}")
        print("           not embedded: model-eval-gate neither starts nor stops it")
        return EXIT_OK
    status = embedded.server_status(settings.home)
    state = (f"running (pid {status.pid}, as {status.owner})" if status.running
             else "stopped" if status.initialised else "not created yet (the first command that needs it creates it)")
    print(f"embedded   PostgreSQL in {status.pgdata}")
    print(f"state      {state}")
    if status.running:
        print(f"url        {status.dsn()}")
    if status.initialised:
        print(f"disk       {status.size_bytes / 1e6:.0f} MB in {settings.home}")
    print("stop it    model-eval-gate db stop" if status.running else
          "start it   model-eval-gate migrate (or any command that uses the database)")
    return EXIT_OK if status.running else EXIT_GATE_ERROR


def cmd_db_stop(args, settings: Settings) -> int:
    from . import db, embedded

    if settings.dsn:
        raise CliError(f"refused: MODEL_EVAL_GATE_DSN is set ({describe_database(settings)}); model-eval-gate "
                       "only stops the embedded PostgreSQL it started (unset the variable to stop that one)")
    status = embedded.server_status(settings.home)
    if not status.running:
        print(embedded.stopped_text(status.pgdata, was_running=False))
        return EXIT_OK
    if not args.force:
        with db.connect(status.dsn(), autocommit=True) as conn:
            daemons = db.fetch_one(conn, "daemons_connected")["daemons"]
        if daemons:
            raise CliError(f"refused: {daemons} model-eval-gate daemon(s) use this database; stop them first "
                           "(they would wait for it to come back), or add --force")
    embedded.stop_server(settings.home)
    print(embedded.stopped_text(status.pgdata, was_running=True))
    return EXIT_OK


def cmd_psql(args, settings: Settings) -> int:
    """Replace this process with psql connected to the database."""
    import shutil

    from . import db, embedded

    dsn = db.resolve_dsn(settings)
    bundled = embedded.bundled_bin_dir() / "psql"
    if not settings.dsn:
        bundled = embedded.ensure_server(settings.home).bin_dir / "psql"
    client = shutil.which("psql") if settings.dsn else None
    client = client or (str(bundled) if bundled.exists() else shutil.which("psql"))
    if not client:
        raise CliError("error: no psql client: install postgresql-client, or use the embedded one "
                       "(unset MODEL_EVAL_GATE_DSN)", EXIT_FAILURE)
    arguments = list(args.psql_args)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(client, [client, dsn, *arguments])
    return EXIT_FAILURE  # pragma: no cover - execv does not return


def cmd_migrate(args, settings: Settings) -> int:
    from . import db, migrate

    dsn = db.resolve_dsn(settings)
    if args.check:
        report = migrate.check(dsn)
        print(report.summary(), file=sys.stdout if report.compatible else sys.stderr)
        return EXIT_OK if report.compatible else EXIT_FAILURE
    if args.status:
        with db.connect(dsn, autocommit=True) as conn:
            rows = migrate.status(conn)
        print(f"{'version':<8} {'name':<24} {'state':<8} applied_at")
        for row in rows:
            print(f"{row.version:04d}     {row.name:<24} {row.state:<8} {row.applied_at or '-'}")
        return EXIT_FAILURE if any(r.state in ("changed", "missing") for r in rows) else EXIT_OK
    if args.down_to is not None:
        if not args.yes:
            print("refusing to run down migrations without --yes: they drop the gate's tables and data "
                  "(never a host table or column the gate found)", file=sys.stderr)
            return EXIT_BAD_INPUT
        reverted = migrate.downgrade(dsn, args.down_to, pooler_mode=settings.pooler)
        print("reverted: " + (", ".join(m.path.name for m in reverted) or "nothing"))
        return EXIT_OK
    applied = migrate.migrate(dsn, pooler_mode=settings.pooler)
    print("applied: " + ", ".join(m.path.name for m in applied) if applied else "database is up to date")
    return EXIT_OK


def cmd_register(args, settings: Settings) -> int:
    from . import db
    from .catalog import (
        MetadataValidationError,
        load_registration_file,
        register_model,
        registration_problems,
        registration_violations,
    )

    try:
        payload = load_registration_file(args.file)
        problems = []
        if not registration_violations(payload):
            with db.connect(settings, autocommit=True) as conn:
                problems = registration_problems(conn, payload, settings)
        if problems and not args.force:
            print(f"refused: {args.file} would be gated at once and end in an error verdict "
                  "(--force registers it anyway):", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        artifact_id = register_model(payload, settings=settings, warn=False)
    except MetadataValidationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # missing, a directory, unreadable
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for problem in problems:
        print(f"warning: {problem}; then: model-eval-gate regate {artifact_id}", file=sys.stderr)
    print(artifact_id)
    return EXIT_OK


def cmd_backfill(args, settings: Settings) -> int:
    from .catalog import backfill

    # The embedded default database stands in for the research platform, so it
    # is seeded with the platform's 8 legacy artifacts; a real host database
    # (DSN set) only gets them when asked with --legacy-fixture.
    load_fixture = args.legacy_fixture or not settings.dsn
    report = args.report or settings.home / "reports" / "migration_report_ws1.md"
    outcome = backfill(settings=settings, report_path=report, load_fixture=load_fixture)
    print(f"adopted {len(outcome.adopted)} legacy model artifact(s); {outcome.already_done} already had model_versions rows")
    print(f"migration report: {outcome.report_path}")
    return EXIT_OK


def cmd_benchmark_add(args, settings: Settings) -> int:
    from . import db
    from .benchmark import BenchmarkError, load_benchmark, record_benchmark, registration_summary

    try:
        benchmark = load_benchmark(args.directory)
        with db.connect(settings, autocommit=True) as conn:
            inserted = record_benchmark(conn, benchmark)
    except BenchmarkError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{'recorded' if inserted else 'updated'} benchmark {benchmark.id}: {benchmark.task}, "
          f"{benchmark.n_examples if benchmark.n_examples is not None else 'self-scored'} examples, "
          f"primary metric {benchmark.primary_metric}, split {benchmark.split_hash[:16]}")
    print(registration_summary(benchmark))
    return EXIT_OK


STDERR_TAIL_LINES = 20


def escaped(text: str) -> str:
    """text with every non-printable character as a visible escape: a model's output cannot drive the terminal."""
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out)


def print_gate_result(result: dict, stream=sys.stdout) -> None:
    from .lifecycle import render_metric_table

    against = result.get("compared_against")
    print(f"candidate   {result['candidate_id']}", file=stream)
    print(f"compared    {against or '(root version: no parent)'}"
          + ("  (the parent was superseded meanwhile)" if result.get("head_moved") else ""), file=stream)
    if result.get("benchmark_id"):
        print(f"benchmark   {result['benchmark_id']}  split {str(result.get('split_hash'))[:16]}"
              + ("  [self-reported scores]" if result.get("self_reported") else ""), file=stream)
    if result.get("metric_table"):
        print("", file=stream)
        print(render_metric_table(result["metric_table"]), file=stream)
        if result.get("bootstrap_skipped"):
            print("(* primary; predictions identical to the compared version: every delta is exactly 0, "
                  "no resampling needed)", file=stream)
        elif result.get("seed") is not None:
            from .decision import level_text
            print(f"(* primary; paired bootstrap, {result.get('n_resamples')} resamples, seed {result['seed']}, "
                  f"{level_text(result.get('confidence', 0.95))} CI)", file=stream)
    holdout = result.get("holdout") or {}
    if holdout.get("attempt") is not None:
        print(f"attempt     {holdout['attempt']} of this lineage on the split: tested at one-sided alpha "
              f"{holdout['alpha']:.3g} ({holdout['multiplicity']['rule']})", file=stream)
    print("", file=stream)
    print(f"verdict     {result['outcome'].upper()} ({result['reason_code']}"
          + (f", magnitude {result['magnitude']}" if result.get("magnitude") else "") + ")", file=stream)
    print(f"reason      {result['reason']}", file=stream)
    if result.get("stderr_tail"):
        lines = str(result["stderr_tail"]).rstrip("\n").splitlines()[-STDERR_TAIL_LINES:]
        print(f"\neval.py's stderr (last {len(lines)} lines, control characters escaped):", file=stream)
        for line in lines:
            print("  | " + escaped(line), file=stream)
    if result.get("dry_run"):
        print("(dry run: no lifecycle change; the query was recorded and counted)", file=stream)


def print_author_result(view: dict, stream=sys.stdout) -> None:
    """What an author may see of a gate (docs/model_promotion_policy.md, section 14.2)."""
    print(f"candidate   {view.get('candidate_id')}", file=stream)
    print(f"compared    {view.get('compared_against') or '(root version: no parent)'}", file=stream)
    if view.get("benchmark_id"):
        print(f"benchmark   {view['benchmark_id']}", file=stream)
    if view.get("attempt") is not None:
        print(f"attempt     {view['attempt']} of this lineage on the split, tested at one-sided alpha "
              f"{view['alpha']:.3g}", file=stream)
    if view.get("confirmation"):
        print(f"sealed      confirmation split {view['confirmation']}", file=stream)
    print("", file=stream)
    print(f"verdict     {str(view['outcome']).upper()} ({view['reason_code']})", file=stream)
    print(f"reason      {view['reason']}", file=stream)
    if view.get("dry_run"):
        print("(dry run: no lifecycle change; the query was recorded and counted)", file=stream)


def _is_operator(settings: Settings) -> bool:
    """Full-precision results are for roles that can read the gate's own records."""
    from . import db

    with db.connect(settings, autocommit=True) as conn:
        return bool(db.fetch_one(conn, "can_read_operator_records")["allowed"])


def _gate_failure_line(artifact_id: str, exc: BaseException) -> str:
    """One line for a failed `gate`: what happened to the job, the cause, and what to do."""
    import psycopg

    from .db import is_connection_loss

    cause = " ".join(str(exc).split()) or type(exc).__name__
    if is_connection_loss(exc):
        hint = "is PostgreSQL up and MODEL_EVAL_GATE_DSN right? then run the gate again"
    elif isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction,
                          psycopg.errors.UndefinedColumn)):
        hint = "the schema is missing or behind: run model-eval-gate migrate --check, then migrate"
    elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
        hint = "this role lacks a privilege the gate needs (docs/operations.md, roles)"
    else:
        hint = "run it again with MODEL_EVAL_GATE_LOG_LEVEL=debug for details, or leave it to the daemon"
    job = getattr(exc, "job_id", None)
    if job is None:
        fate = ""
    elif getattr(exc, "job_released", False):
        fate = f" (job {job} released back to the queue)"
    else:
        fate = f" (job {job} could not be released; its lease expires and a daemon's sweep requeues it)"
    return f"error: gate of {artifact_id} failed{fate}: {type(exc).__name__}: {cause}; hint: {hint}"


def cmd_gate(args, settings: Settings) -> int:
    from .gate import GateRefused, author_view, dry_run, run_eval_gate, run_eval_gate_quick
    from .lifecycle import LeaseLost

    audience = "author" if args.author_view or not _is_operator(settings) else "operator"
    try:
        if args.quick:
            result = run_eval_gate_quick(args.artifact_id, settings=settings, requested_by=_operator(),
                                         audience=audience)
        elif args.dry_run:
            result = dry_run(args.artifact_id, settings=settings, requested_by=_operator(), audience=audience)
        else:
            result = run_eval_gate(args.artifact_id, settings=settings, requested_by="cli")
            if audience == "author":
                result = author_view(result)
    except GateRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LeaseLost as exc:
        print(f"error: gate of {args.artifact_id} lost its job's lease ({exc}); nothing was written; "
              "hint: another worker holds the job now; see model-eval-gate status", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as exc:
        print(_gate_failure_line(args.artifact_id, exc), file=sys.stderr)
        return 130
    except Exception as exc:  # one line with the cause and a hint, never a traceback
        print(_gate_failure_line(args.artifact_id, exc), file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif audience == "author":
        print_author_result(result)
    else:
        print_gate_result(result)
    return EXIT_GATE_ERROR if result["outcome"] == "error" else EXIT_OK


def cmd_force_promote(args, settings: Settings) -> int:
    from .gate import GateRefused, force_promote
    from .lifecycle import NotApplicable

    try:
        result = force_promote(args.artifact_id, args.actor, args.reason, settings=settings)
    except (GateRefused, NotApplicable, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"promoted {result['candidate_id']} over {result['compared_against'] or '(no previous head)'}: {result['reason']}")
    return EXIT_OK


def cmd_snapshot(args, settings: Settings) -> int:
    from .evaluate import model_hash
    from .evaluation.snapshot import SnapshotError, snapshot_model_dir

    try:
        directory = snapshot_model_dir(args.source, settings.resolved_artifact_root, args.artifact_id)
    except (SnapshotError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{directory} (read-only, content-addressed; content hash {model_hash(directory)})")
    return EXIT_OK


def cmd_roles(args, settings: Settings) -> int:
    from .store.roles import ROLES, apply_roles, roles_sql

    if not args.apply:
        sys.stdout.write(roles_sql())
        return EXIT_OK
    import psycopg

    from . import db

    with db.connect(settings, autocommit=True) as conn:
        try:
            apply_roles(conn)
        except psycopg.errors.InsufficientPrivilege as exc:
            print(f"refused: {exc.diag.message_primary}; apply the roles as the schema's owner with CREATEROLE",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            print(f"refused: {exc.diag.message_primary}; run `model-eval-gate migrate` first", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"applied {', '.join(ROLES)}; grant them to login roles (see docs/operations.md, Roles)")
    return EXIT_OK


def cmd_confirm(args, settings: Settings) -> int:
    from .gate import GateRefused, confirm_promotion
    from .lifecycle import HeadMoved, NotApplicable

    try:
        result = confirm_promotion(args.artifact_id, args.actor, args.reason, settings=settings)
    except (GateRefused, NotApplicable, HeadMoved, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"promoted {result['candidate_id']} over {result['compared_against'] or '(no previous head)'}: "
          f"{result['reason']}")
    return EXIT_OK


def cmd_rebenchmark(args, settings: Settings) -> int:
    from . import db
    from .store.operator import rebenchmark

    with db.connect(settings, autocommit=True) as conn:
        try:
            action = rebenchmark(conn, args.lineage_id, args.benchmark_id, actor=args.actor, reason=args.reason)
        except (LookupError, ValueError) as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"lineage {args.lineage_id} is judged on benchmark {args.benchmark_id} from now on "
          f"(operator action {action}, by {args.actor.strip()})")
    return EXIT_OK


def cmd_accept_reparent(args, settings: Settings) -> int:
    from . import db
    from .store.operator import accept_reparent

    with db.connect(settings, autocommit=True) as conn:
        try:
            action = accept_reparent(conn, args.artifact_id, actor=args.actor, reason=args.reason)
        except (LookupError, ValueError) as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"{args.artifact_id} is judged in the lineage it sits in now (operator action {action}, "
          f"by {args.actor.strip()})")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _artifact_id(text: str) -> str:
    """An artifact id from the command line: one safe path component, or a clear usage error."""
    from .evaluation.model_dirs import UnsafeArtifactId, check_artifact_id

    try:
        return check_artifact_id(text)
    except UnsafeArtifactId as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_run(args, settings: Settings) -> int:
    from .worker import run_daemon

    if args.workers is not None:
        settings = settings.with_(workers=args.workers)
    return run_daemon(settings)


def _operator() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"cli:uid {os.getuid()}"


def cmd_regate(args, settings: Settings) -> int:
    import psycopg

    from . import db
    from .safe_text import check_reason

    try:
        args.reason = check_reason(args.reason)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with db.connect(settings, autocommit=True) as conn:
        active = db.fetch_one(conn, "active_job_for_artifact", {"artifact_id": args.artifact_id})
        try:
            row = db.fetch_one(conn, "request_gate", {"artifact_id": args.artifact_id, "reason": args.reason,
                                                      "requested_by": _operator()})
        except (psycopg.errors.CheckViolation, psycopg.errors.NoDataFound) as exc:
            message = (exc.diag.message_primary or str(exc)).removeprefix("model_eval_gate: ")
            hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
            print(f"refused: {message}{hint}", file=sys.stderr)
            return EXIT_BAD_INPUT
        daemons = db.fetch_one(conn, "daemons_connected")["daemons"]
    if active is not None:
        print(f"{args.artifact_id} already has a {active['status']} gate job {row['job_id']}; "
              "the request joins it")
    else:
        print(f"queued gate job {row['job_id']} for {args.artifact_id} (reason: {args.reason})")
    if not daemons:
        print("no model-eval-gate daemon is connected to this database: the job waits until one runs "
              "(model-eval-gate run), or gate it now with: model-eval-gate gate " + args.artifact_id,
              file=sys.stderr)
    return EXIT_OK


def _table(headers: list[str], rows: list[list[str]], stream) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=stream)
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=stream)


def _when(value) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


def _seconds(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.0f}s" if abs(value) < 120 else f"{value / 60:.1f}min"


def _signed(value) -> str:
    return f"{value:+.4g}" if value is not None else "-"


def _print_holdout_splits(splits: list[dict], out) -> None:
    print(f"\nholdout   {len(splits)} benchmark split(s) queried", file=out)
    if splits:
        _table(["benchmark", "split", "role", "queries", "promotions", "budget left", "lineages", "max attempt",
                "last query", "freshness"],
               [[s["benchmark_id"], s["split_hash"][:12], s["split_role"], str(s["queries_used"]),
                 str(s["promotions_released"]), f"{s['budget_left']}/{s['query_budget']}", str(s["lineages"]),
                 str(s["max_attempt"]), _when(s["last_query_at"]), s["freshness"]] for s in splits], out)


def cmd_status(args, settings: Settings) -> int:
    from . import db, holdout

    with db.connect(settings, autocommit=True) as conn:
        daemons = db.fetch_one(conn, "daemons_connected")["daemons"]
        queue = db.fetch_one(conn, "status_queue")
        running = db.fetch_all(conn, "status_running")
        failed = db.fetch_all(conn, "status_failed", {"limit": args.limit})
        decisions = db.fetch_all(conn, "status_decisions", {"limit": args.limit})
        splits = holdout.split_status(conn)
    out = sys.stdout
    print(f"daemons   {daemons} connected", file=out)
    waiting = (f", {queue['waiting']} waiting to retry (next at {_when(queue['next_run_after'])})"
               if queue["waiting"] else "")
    print(f"queue     {queue['due'] + queue['waiting']} queued: {queue['due']} due now{waiting}", file=out)

    print(f"\nrunning   {len(running)}", file=out)
    if running:
        _table(["job", "candidate", "worker", "attempt", "lease left", "running for"],
               [[str(r["id"]), r["artifact_id"], r["worker_id"], f"{r['attempt']}/{r['max_attempts']}",
                 _seconds(r["lease_seconds_left"]), _seconds(r["running_seconds"])] for r in running], out)

    total_failed = failed[0]["total"] if failed else 0
    print(f"\nfailed    {total_failed}" + (f" (latest {len(failed)} shown)" if total_failed > len(failed) else ""),
          file=out)
    if failed:
        _table(["job", "candidate", "attempts", "finished", "error"],
               [[str(r["id"]), r["artifact_id"], f"{r['attempt']}/{r['max_attempts']}", _when(r["finished_at"]),
                 " ".join((r["error"] or "-").split())[:160]] for r in failed], out)

    _print_holdout_splits(splits, out)

    print(f"\nlast {len(decisions)} decisions", file=out)
    if decisions:
        rows = []
        for d in decisions:
            primary = (f"{d['metric']} {_signed(d['delta'])} [{_signed(d['ci_low'])}, {_signed(d['ci_high'])}]"
                       if d["delta"] is not None else "-")
            against = d["compared_against"] or "(root)"
            if d["head_moved"]:
                against += " (new head)"
            rows.append([d["candidate"], against, d["outcome"], d["reason_code"] or "-", primary,
                         _when(d["finished_at"])])
        _table(["candidate", "compared against", "outcome", "reason", "primary delta [95% CI]", "finished"], rows, out)
    return EXIT_OK


def cmd_similar(args, settings: Settings) -> int:
    from . import db
    from .fingerprint import SimilarityError, similar_versions

    with db.connect(settings, autocommit=True) as conn:
        try:
            found = similar_versions(conn, args.artifact_id, k=args.k, benchmark_id=args.benchmark)
        except SimilarityError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_BAD_INPUT
    out = sys.stdout
    print(f"versions behaving most like {found.artifact_id} (lineage {found.lineage_id}, version "
          f"{found.version_number}, {found.promotion_state or 'no model_versions row'}) on benchmark "
          f"{found.benchmark_id}, split {found.split_hash[:16]}", file=out)
    if not found.neighbours:
        print("  no other version has a stored evaluation on this split", file=out)
        return EXIT_OK
    _table(["rank", "version", "cosine distance", "lineage", "version no.", "promotion state"],
           [[str(rank), n.artifact_id, f"{n.cosine_distance:.6f}", n.lineage_id, str(n.version_number),
             n.promotion_state or "-"] for rank, n in enumerate(found.neighbours, 1)], out)
    how = (f"from the index, hnsw.ef_search {found.ef_search}" if found.method == "index"
           else "by an exact scan of the split")
    print(f"({how}; cosine distance of behavioural fingerprints, about 1 - correlation of the predictions)",
          file=out)
    return EXIT_OK


def cmd_web(args, settings: Settings) -> int:
    from .web.server import WebServerError, serve, web_dsn

    check_schema(settings.with_(dsn=web_dsn(settings)))
    try:
        return serve(settings, host=args.host, port=args.port, root_path=args.root_path.rstrip("/"),
                     refresh_seconds=args.refresh)
    except WebServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _environment_users(settings: Settings) -> dict[str, list[str]] | None:
    """Which model versions were evaluated in each environment, or None without a database."""
    from . import db

    if settings.dsn is None and not settings.pgdata.exists():
        return None  # no database here yet: do not start one just to list a cache
    try:
        with db.connect(settings, autocommit=True) as conn:
            return {row["environment_hash"]: row["artifact_ids"] for row in db.fetch_all(conn, "environment_users")}
    except Exception:  # the cache is listed whatever the database says
        return None


def cmd_env_list(args, settings: Settings) -> int:
    from .evaluation import environments

    cache = settings.resolved_env_cache_dir
    found = environments.list_environments(cache)
    users = _environment_users(settings)
    total = sum(e.size_bytes for e in found)
    print(f"{len(found)} environments in {cache}, {total / 1024**2:.0f} MiB "
          f"(cap {settings.env_cache_max_bytes / 1024**2:.0f} MiB, MODEL_EVAL_GATE_ENV_CACHE_MAX_BYTES)")
    for env in found:
        used = _ago(env.last_used_at)
        versions = "versions unknown (no database)" if users is None else \
            ("used by " + ", ".join(users.get(env.key, [])) if users.get(env.key) else "used by no stored evaluation")
        print(f"{env.key}  python {env.python}  {env.size_bytes / 1024**2:7.1f} MiB  last used {used}  {versions}")
        print(f"    {' '.join(env.packages) or '(no packages)'}")
    return EXIT_OK


def cmd_env_prune(args, settings: Settings) -> int:
    from .evaluation import environments

    build = environments.BuildSettings.from_settings(settings)
    older = args.unused_days * 86400 if args.unused_days is not None else None
    removed = environments.prune(build, older_than_seconds=older, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for env in removed:
        print(f"{verb} {env.key}  python {env.python}  {env.size_bytes / 1024**2:.1f} MiB  last used {_ago(env.last_used_at)}")
    print(f"{verb} {len(removed)} environments, {sum(e.size_bytes for e in removed) / 1024**2:.0f} MiB")
    return EXIT_OK


def _ago(timestamp: float) -> str:
    import time

    seconds = max(0.0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def cmd_demo(args, settings: Settings) -> int:
    from .demo.runner import DemoError, run_demo, stop_demo

    try:
        if args.stop:
            return stop_demo(args.home)
        return run_demo(args.home, timeout=args.timeout, settings=settings)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE



DESCRIPTION = """\
Decide, automatically and defensibly, whether a new version of a machine-learning
model replaces the old one: each candidate and its parent run their eval.py on the
same benchmark split in a bubblewrap sandbox, paired-bootstrap 95% confidence
intervals compare them, and a written policy decides promote, promote with
tradeoff, reject or error.

New here? `model-eval-gate demo` shows it all on its own database, in seconds."""

EPILOG = """\
environment:
  MODEL_EVAL_GATE_DSN    the PostgreSQL to use (a libpq URI or key=value string);
                         unset: an embedded PostgreSQL in MODEL_EVAL_GATE_HOME
  MODEL_EVAL_GATE_HOME   where the embedded database, artifacts and logs live
                         (default ~/.local/share/model-eval-gate;
                         /var/lib/model-eval-gate as root)
  MODEL_EVAL_GATE_*      every other setting: daemon/model_eval_gate/config.py

first steps:
  model-eval-gate demo                 the whole product on its own data
  model-eval-gate migrate              create the tables (once per database)
  model-eval-gate COMMAND --help       what a command does and its options

exit status: 0 ok, 1 operational failure, 2 bad input or unmigrated database,
3 a gate verdict of error, 130 interrupted.

docs: README.md, docs/operations.md (running the daemon), docs/sandbox.md,
docs/model_promotion_policy.md (every rule the gate enforces)."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and epilog's line breaks; wraps option help to the terminal."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=32, width=min(100, _terminal_width()))


class _WrappingHelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=32, width=min(100, _terminal_width()))


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _version() -> str:
    from importlib import metadata

    from . import __version__

    try:
        return metadata.version("model-eval-gate")
    except metadata.PackageNotFoundError:  # running from a checkout (PYTHONPATH=daemon)
        return __version__


def _add(sub, name: str, handler, help: str, description: str | None = None, **defaults) -> argparse.ArgumentParser:
    """A subcommand: `help` is its line in the command list, `description` (default: help) its --help text."""
    parser = sub.add_parser(name, help=help, description=description or (help[0].upper() + help[1:] + "."),
                            formatter_class=_WrappingHelpFormatter)
    parser.set_defaults(handler=handler, **defaults)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-eval-gate", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"model-eval-gate {_version()}")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                        help="auto (default): readable lines on a terminal, JSON lines otherwise "
                             "(pipes, files, systemd's journal)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="default: warning on a terminal (info for `run`), else MODEL_EVAL_GATE_LOG_LEVEL "
                             "or info")
    parser.add_argument("--traceback", action="store_true",
                        help="on an unexpected error, print the Python traceback too (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands (model-eval-gate COMMAND --help for each)")

    p = _add(sub, "demo", cmd_demo, "run the end-to-end demo on its own embedded PostgreSQL (reset on every run)",
             "Run the end-to-end demo: its own embedded PostgreSQL, the daemon, the bubblewrap sandbox and "
             "real eval.py files, on data generated in code. It never touches MODEL_EVAL_GATE_DSN, resets "
             "its own database on every run, and leaves that PostgreSQL running for a look with psql "
             "(`--stop` stops it).", needs_schema=False)
    p.add_argument("--home", type=Path, metavar="DIR",
                   help="the demo's home directory (default: ~/.local/share/model-eval-gate-demo, "
                        "/var/lib/model-eval-gate-demo as root)")
    p.add_argument("--stop", action="store_true",
                   help="stop the demo's daemon and embedded PostgreSQL instead of running the demo")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="how long to wait for the daemon's verdicts in each round (default 300)")

    p = _add(sub, "db-url", cmd_db_url, "print the database URL (psql \"$(model-eval-gate db-url)\" connects)",
             "Print the database URL: MODEL_EVAL_GATE_DSN if set, else the embedded server's (starting it "
             "if needed). psql \"$(model-eval-gate db-url)\" connects to it.", needs_schema=False)

    p = _add(sub, "db", None, "the embedded PostgreSQL: db status, db stop, db url",
             "The embedded PostgreSQL (used when MODEL_EVAL_GATE_DSN is unset) lives in "
             "MODEL_EVAL_GATE_HOME/pgdata and keeps running between commands.")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    _add(db_sub, "status", cmd_db_status, "where the database is, whether it runs, its disk use (exit 3 if stopped)",
         needs_schema=False)
    q = _add(db_sub, "stop", cmd_db_stop, "stop the embedded PostgreSQL (its data stays; any command restarts it)",
             needs_schema=False)
    q.add_argument("--force", action="store_true", help="stop it even while model-eval-gate daemons use it")
    _add(db_sub, "url", cmd_db_url, "print the database URL (the same as db-url)", needs_schema=False)

    p = _add(sub, "psql", cmd_psql, "open psql on the database (the embedded server's own client if needed)",
             "Run psql connected to the database: the system's psql for MODEL_EVAL_GATE_DSN, the embedded "
             "server's bundled client otherwise (or when no psql is installed). Arguments after the command "
             "go to psql, e.g. model-eval-gate psql -c 'select * from gate_jobs'.", needs_schema=False)
    p.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="PSQL_ARGS", help="passed to psql as they are")

    p = _add(sub, "migrate", cmd_migrate, "create or update model-eval-gate's tables (idempotent)",
             "Apply the pending SQL migrations (sql/migrations), each in its own transaction, under an "
             "advisory lock. Safe to run again: an up-to-date database is left alone. On a platform's "
             "existing database it first checks the host schema and refuses, changing nothing, what it "
             "cannot use (docs/operations.md, 'Deploying into an existing database').", needs_schema=False)
    p.add_argument("--status", action="store_true", help="list applied and pending migrations, change nothing")
    p.add_argument("--check", action="store_true",
                   help="inspect the host schema, list every incompatibility with its fix; change nothing")
    p.add_argument("--down-to", type=int, metavar="VERSION",
                   help="revert the migrations above VERSION with their .down.sql files (drops data)")
    p.add_argument("--yes", action="store_true", help="confirm --down-to")

    p = _add(sub, "register", cmd_register, "register a candidate model version from a JSON file",
             "Validate a registration file (schemas/model_registration.json) and register the candidate "
             "version it describes; prints the artifact id. Invalid files exit 2 listing every violation. "
             "A running daemon gates the candidate at once, so place its eval.py first "
             "(MODEL_EVAL_GATE_ARTIFACT_ROOT/models/<artifact id>/eval.py).")
    p.add_argument("file", type=Path, metavar="FILE", help="the registration JSON file (see README: Using it)")
    p.add_argument("--force", action="store_true",
                   help="register even without eval.py in place or with an unrecorded benchmark (the gate "
                        "then ends in an error verdict; fix it and run `model-eval-gate regate ID`)")

    p = _add(sub, "backfill", cmd_backfill, "give legacy model artifacts their model_versions rows (WS1)")
    p.add_argument("--report", type=Path, metavar="PATH", help="where to write the migration report "
                   "(default: MODEL_EVAL_GATE_HOME/reports/migration_report_ws1.md)")
    p.add_argument("--legacy-fixture", action="store_true",
                   help="load the research platform's 8 legacy artifacts first (implied on the embedded database)")

    p = _add(sub, "benchmark", None, "record benchmarks (benchmark add DIR)",
             "Manage benchmarks: the labelled splits candidates are compared on (schemas/benchmark.json).")
    bench = p.add_subparsers(dest="benchmark_command", required=True, metavar="ACTION")
    q = _add(bench, "add", cmd_benchmark_add, "validate, hash and record a benchmark directory",
             "Validate a benchmark directory (manifest.json, inputs/, labels), hash its split and record it, "
             "so that model versions naming its id can be gated.")
    q.add_argument("directory", type=Path, metavar="DIR", help="the benchmark directory (holds manifest.json)")

    p = _add(sub, "env", None, "list and prune the cache of model environments",
             "Model environments (docs/environments.md): the packages a model pins in its requirements.txt, "
             "built once with uv into a content-addressed cache.", needs_schema=False)
    env = p.add_subparsers(dest="env_command", required=True, metavar="ACTION")
    _add(env, "list", cmd_env_list, "each cached environment: size, last use, its packages, which versions used it",
         needs_schema=False)
    q = _add(env, "prune", cmd_env_prune, "remove least recently used environments over the size cap, or unused ones",
             needs_schema=False)
    q.add_argument("--unused-days", type=float, default=None, metavar="DAYS",
                   help="also remove environments not used for this many days")
    q.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")

    p = _add(sub, "gate", cmd_gate, "gate one candidate now and print the metric table and verdict",
             "Gate one candidate in this process: evaluate it and its parent in the sandbox, compare them, "
             "decide and apply the verdict (exit 3 when the verdict is error). --dry-run and --quick change "
             "no lifecycle state, but like every query on a split's labels they are recorded and counted "
             "(docs/model_promotion_policy.md, section 14). A role that cannot read the gate's records "
             "sees only the author's release.")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id,
                   help="the candidate's artifact id (as registered)")
    p.add_argument("--dry-run", action="store_true",
                   help="decide exactly as the gate would (full resample count) with no lifecycle change; "
                        "a counted query")
    p.add_argument("--quick", action="store_true",
                   help="a fast preview: fewer resamples (MODEL_EVAL_GATE_QUICK_RESAMPLES, default 100), "
                        "no lifecycle change; a counted query")
    p.add_argument("--author-view", action="store_true",
                   help="print only what the candidate's author may see (the default for a non-operator role)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")

    p = _add(sub, "force-promote", cmd_force_promote, "promote a candidate over the gate's verdict (recorded)",
             "Promote a candidate whatever the gate decided: the only override, recorded with who and why.")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the candidate's artifact id")
    p.add_argument("--actor", required=True, help="the human taking responsibility (not a service account)")
    p.add_argument("--reason", required=True, help="why; kept in the audit trail")

    p = _add(sub, "run", cmd_run, "run the daemon: LISTEN, claim, gate, apply (SIGTERM stops it gracefully)",
             "Run the daemon: it listens for new candidates, gates each under a lease and applies the "
             "verdict. Any number of daemons can serve one database. Logs go to stdout. Full guide: "
             "docs/operations.md.", needs_schema="if_reachable")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="concurrent gates in this daemon (default: MODEL_EVAL_GATE_WORKERS or 1)")

    p = _add(sub, "regate", cmd_regate, "queue a rejected or failed candidate for another gate",
             "Ask the daemons to gate a candidate again (after a fix). Promoted and superseded versions "
             "are never re-gated: register a new version instead.")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the candidate's artifact id")
    p.add_argument("--reason", default="manual regate", help="recorded on the job (default: manual regate)")

    p = _add(sub, "status", cmd_status, "queue depth, running and failed jobs, the last decisions")
    p.add_argument("--limit", type=_positive_int, default=10, metavar="N",
                   help="failed jobs and decisions to list (default 10)")

    p = _add(sub, "similar", cmd_similar, "the versions that behave most like one, by behavioural fingerprint")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the version to compare the others with")
    p.add_argument("--k", type=_positive_int, default=10, metavar="N", help="how many to list (default 10)")
    p.add_argument("--benchmark", metavar="ID",
                   help="benchmark to compare on (default: that of the version's latest stored evaluation)")

    # Its own schema check, on the database it reads (MODEL_EVAL_GATE_WEB_DSN may name another role).
    p = _add(sub, "web", cmd_web, "serve the read-only web pages: verdicts, lineages, queue, benchmarks",
             "Serve read-only web pages and their JSON twins (/api/...): a page per verdict with its forest "
             "plot, per lineage, the queue and the benchmarks. Binds 127.0.0.1 and has no login of its own: "
             "put it behind an authenticating reverse proxy to share it (docs/web.md). Reads "
             "MODEL_EVAL_GATE_WEB_DSN if set (e.g. a read-only role), else the usual database.",
             needs_schema=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--root-path", default="", metavar="PREFIX",
                   help="the path prefix a reverse proxy serves it under, e.g. /gate")
    p.add_argument("--refresh", type=_positive_int, default=5, metavar="SECONDS",
                   help="how often the queue page reloads itself (default 5)")

    # Verdict integrity (docs/model_promotion_policy.md section 16): the operator decisions an author cannot make.
    p = _add(sub, "confirm", cmd_confirm, "confirm the promotion a self-scored verdict awaits (recorded)",
             "Confirm the promotion a verdict on self-reported scores awaits (outcome awaiting_confirmation): "
             "applied against the same head, recorded with who and why.")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the candidate's artifact id")
    p.add_argument("--actor", required=True, help="the human taking responsibility (not a service account)")
    p.add_argument("--reason", required=True, help="why; kept in the audit trail")

    p = _add(sub, "rebenchmark", cmd_rebenchmark, "judge a lineage on another recorded benchmark (recorded)",
             "Judge a lineage on another recorded benchmark from now on. A candidate cannot choose its "
             "benchmark; an operator can, and the decision is recorded in operator_actions.")
    p.add_argument("lineage_id", metavar="LINEAGE", type=_artifact_id, help="the lineage (its root version's id)")
    p.add_argument("benchmark_id", metavar="BENCHMARK", help="a recorded benchmark's id")
    p.add_argument("--actor", required=True, help="the human taking responsibility (not a service account)")
    p.add_argument("--reason", required=True, help="why; kept in the audit trail")

    p = _add(sub, "accept-reparent", cmd_accept_reparent,
             "let a version first judged in another lineage be judged in its current one (recorded)",
             "Accept that a version first judged in one lineage (or whose files were) is judged in the lineage "
             "it sits in now; without this its gate ends in lineage_changed.")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the version's artifact id")
    p.add_argument("--actor", required=True, help="the human taking responsibility (not a service account)")
    p.add_argument("--reason", required=True, help="why; kept in the audit trail")

    p = _add(sub, "snapshot", cmd_snapshot, "copy a model directory into read-only content-addressed storage",
             "Copy every file of SRC once into artifact_root/cas/sha256/ (read-only) and build models/ID as a "
             "read-only tree of hard links to them, so the model's files cannot change under its verdicts. "
             "Register the version afterwards.", needs_schema=False)
    p.add_argument("source", type=Path, metavar="SRC", help="the directory the training job wrote")
    p.add_argument("artifact_id", metavar="ID", type=_artifact_id, help="the version's artifact id")

    p = _add(sub, "roles", cmd_roles, "print (or --apply) the least-privilege roles: pipeline, daemon, operator",
             "Print sql/roles.sql, the pipeline, daemon and operator roles with exactly their grants; "
             "--apply runs it against the configured database (as the schema owner, with CREATEROLE). "
             "Who runs what: docs/operations.md, Roles.", needs_schema=False)
    p.add_argument("--apply", action="store_true", help="create and grant them in the configured database")
    return parser


def _log_level(args, log_format: str) -> str:
    if args.log_level:
        return args.log_level
    configured = os.environ.get("MODEL_EVAL_GATE_LOG_LEVEL")
    if configured:
        return configured.lower()
    if log_format == "console":
        # A person at a terminal wants the command's output, and what went wrong;
        # the daemon's log is its output.
        return "info" if args.command == "run" else "warning"
    return "info"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line as main() reads it (argparse exits 2 with usage on a bad one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passed_on = _psql_arguments(argv)
    args = build_parser().parse_args(argv)
    if passed_on is not None:
        args.psql_args = passed_on
    return args


def _psql_arguments(argv: list[str]) -> list[str] | None:
    """For `model-eval-gate [options] psql ARGS...`: removes ARGS from argv (in place) and returns them.

    argparse would read psql's own options (-c, -tA) as ours.
    """
    for index, word in enumerate(argv):
        if word == "psql":
            passed_on = argv[index + 1:]
            del argv[index + 1:]
            return passed_on
        if not word.startswith("-") and argv[index - 1:index] != ["--log-format"] and \
                argv[index - 1:index] != ["--log-level"]:
            return None  # another command (whose own arguments may contain the word psql)
    return None


def check_schema(settings: Settings) -> None:
    """Raise NotMigrated unless every migration this version ships is applied."""
    from . import db, migrate

    with db.connect(settings, autocommit=True) as conn:
        missing = migrate.unapplied(conn)
    where = describe_database(settings)
    if missing is None:
        raise NotMigrated(f"error: {where} has no model-eval-gate tables yet: {MIGRATE_HINT}")
    if missing:
        names = ", ".join(m.path.name for m in missing)
        raise NotMigrated(f"error: {where} lacks {len(missing)} migration(s) this version needs ({names}): "
                          f"{MIGRATE_HINT}")


def main(argv: list[str] | None = None) -> int:
    from .safe_text import EscapingStream

    # Model and author text (stderr tails, ids, reasons) reaches the terminal
    # through these: escape sequences in it are shown, never obeyed.
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(sys.stdout), EscapingStream(sys.stderr)
    try:
        return _main(argv, *saved)
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: list[str] | None, raw_stdout, raw_stderr) -> int:
    args = parse_args(argv)  # usage errors: argparse prints usage and one line, exit 2
    # stdout stays for results. The log gets the raw stream: JSON escapes
    # control characters itself, and the console renderer's values are escaped.
    stream = raw_stdout if args.command == "run" else raw_stderr
    log_format = choose_format(args.log_format, stream)
    settings = None
    try:
        configure_logging(_log_level(args, log_format), stream=stream, fmt=log_format)
        settings = _settings()
        needs_schema = getattr(args, "needs_schema", True)
        if needs_schema == "if_reachable":  # the daemon waits for its database itself
            import psycopg

            try:
                check_schema(settings)
            except psycopg.OperationalError:
                pass
        elif needs_schema:
            check_schema(settings)
        return args.handler(args, settings)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line, never a traceback
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, BrokenPipeError):  # `model-eval-gate status | head`: the reader left
            _silence_stdout()
            return EXIT_FAILURE
        message, status = explain(exc, settings)
        if args.traceback:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        try:
            print(message, file=sys.stderr, flush=True)
        except (BrokenPipeError, OSError):
            pass
        return status


def _silence_stdout() -> None:
    # Python flushes stdout at exit; into a closed pipe that prints a traceback of its own.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
