"""How fast does `model-eval-gate similar` answer from the HNSW index?  Prints figures; asserts nothing.

    python benchmarks/bench_similar.py [--versions 5000] [--queries 200] [--k 10]

Builds a scratch database (on a throwaway embedded PostgreSQL with pgvector,
or on the server of MODEL_EVAL_GATE_DSN, which must allow CREATE DATABASE;
the scratch database is dropped afterwards) holding --versions model versions
in lineages of 50, each with a stored evaluation of 1,000 predictions and its
behavioural fingerprint, then times --queries similarity searches for random
versions:

* similar_versions(): what the CLI runs once connected (look up the version
  and its latest evaluation, check for missing fingerprints, SET LOCAL
  hnsw.ef_search, the nearest-neighbour query through the HNSW index);
* the nearest-neighbour query alone, through the HNSW index;
* the peer, in the same run: that query with SET LOCAL enable_indexscan = off,
  i.e. an exact scan of every fingerprint and a top-k sort.

Medians and 95th percentiles in milliseconds, the exact/HNSW ratio, and the
HNSW answer's recall of the exact top k. Process start-up and connecting are
not included (they are the same for any query).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from model_eval_gate import db, embedded, migrate  # noqa: E402
from model_eval_gate import fingerprint as fp  # noqa: E402

VERSIONS_PER_LINEAGE = 50
N_EXAMPLES = 1000
BENCHMARK_ID, SPLIT_HASH = "bench-similar", "split-v1"


def admin_dsn(home: Path | None) -> str:
    configured = os.environ.get("MODEL_EVAL_GATE_DSN")
    if configured:
        return configured
    return embedded.ensure_server(home).dsn("postgres")


def populate(conn: psycopg.Connection, n_versions: int, rng: np.random.Generator) -> None:
    """Lineages whose versions drift from a common behaviour, each version a little from the last."""
    conn.execute("INSERT INTO benchmarks (id, task, primary_metric, split_hash) VALUES (%s, 'binary', 'auroc', %s)",
                 (BENCHMARK_ID, SPLIT_HASH))
    artifacts, versions, evaluations = [], [], []
    for version in range(n_versions):
        lineage, number = divmod(version, VERSIONS_PER_LINEAGE)
        if number == 0:
            logits = rng.standard_normal(N_EXAMPLES) * 2.0
        logits = logits + rng.standard_normal(N_EXAMPLES) * rng.choice([0.02, 0.1, 0.3])
        predictions = 1.0 / (1.0 + np.exp(-logits))
        artifact_id = f"lineage{lineage:03d}-v{number + 1:02d}"
        parent = f"lineage{lineage:03d}-v{number:02d}" if number else None
        head = number == VERSIONS_PER_LINEAGE - 1 or version == n_versions - 1
        artifacts.append((artifact_id, artifact_id, number + 1, parent, int(head)))
        versions.append((artifact_id, BENCHMARK_ID, "promoted" if head else "superseded"))
        evaluations.append((artifact_id, BENCHMARK_ID, SPLIT_HASH, f"model-{artifact_id}",
                            predictions.astype("<f8").tobytes(), [N_EXAMPLES], N_EXAMPLES,
                            fp.compute_fingerprint(predictions, BENCHMARK_ID, SPLIT_HASH).vector))
    with conn.cursor() as cursor:
        cursor.executemany("INSERT INTO artifacts (id, artifact_type, title, version_number, parent_version_id, "
                           "is_latest) VALUES (%s, 'model', %s, %s, %s, %s)", artifacts)
        cursor.executemany("INSERT INTO model_versions (artifact_id, benchmark_id, promotion_state) "
                           "VALUES (%s, %s, %s)", versions)
        cursor.executemany("INSERT INTO eval_results (artifact_id, benchmark_id, split_hash, model_hash, predictions, "
                           "prediction_shape, n_examples, sandboxed, fingerprint) "
                           "VALUES (%s, %s, %s, %s, %s, %s, %s, true, %s)", evaluations)
    conn.execute("ANALYZE")


def nearest_query(conn: psycopg.Connection, params: dict, *, exact: bool) -> list[dict]:
    # prepare=False: PostgreSQL keeps a prepared statement's generic plan
    # whatever enable_indexscan says later, so a prepared peer could quietly
    # run through the index. The CLI runs each query once, unprepared, too.
    with conn.transaction():
        if exact:
            conn.execute("SET LOCAL enable_indexscan = off")
        else:
            db.execute(conn, "set_hnsw_ef_search", {"ef_search": str(params["ef_search"])})
        return conn.execute(db.query("nearest_fingerprints"), params, prepare=False).fetchall()


def plan_of(conn: psycopg.Connection, params: dict, *, exact: bool) -> str:
    """The plan's scan and sort nodes, one line."""
    with conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off" if exact else
                     f"SET LOCAL hnsw.ef_search = {int(params['ef_search'])}")
        rows = conn.execute("EXPLAIN " + db.query("nearest_fingerprints"), params, prepare=False).fetchall()
    nodes = []
    for row in rows:
        line = row["QUERY PLAN"].strip().removeprefix("->").strip()
        if line.split("  (")[0].endswith(("Scan", "Sort")) or " Scan " in line or " Scan using " in line:
            nodes.append(re.sub(r"\s+\(cost=.*", "", line))
    return " > ".join(nodes)


def summary(samples: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    home = None
    if not os.environ.get("MODEL_EVAL_GATE_DSN"):
        home = Path(tempfile.mkdtemp(prefix="meg-bench-similar-"))
        home.chmod(0o755)  # as root, pgserver runs PostgreSQL as its own user
    scratch = f"meg_bench_similar_{uuid.uuid4().hex[:8]}"
    admin = admin_dsn(home)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=scratch)
    try:
        migrate.migrate(dsn)
        rng = np.random.default_rng(20240607)
        with db.connect(dsn, autocommit=True) as conn:
            clock = time.perf_counter()
            populate(conn, args.versions, rng)
            build_seconds = time.perf_counter() - clock
            ids = [r["artifact_id"] for r in conn.execute("SELECT artifact_id FROM eval_results ORDER BY id")]
            fingerprints = {r["artifact_id"]: fp.as_array(r["fingerprint"])
                            for r in conn.execute("SELECT artifact_id, fingerprint FROM eval_results")}
            fetch, ef_search = fp.search_plan(args.k)
            chosen = [ids[i] for i in rng.integers(0, len(ids), args.queries)]

            def params_for(artifact_id: str) -> dict:
                return {"v": fingerprints[artifact_id], "benchmark_id": BENCHMARK_ID, "split_hash": SPLIT_HASH,
                        "exclude": artifact_id, "k": args.k, "fetch": fetch, "ef_search": ef_search}

            print(f"{len(ids)} stored fingerprints ({len(ids) // VERSIONS_PER_LINEAGE} lineages), built and "
                  f"indexed in {build_seconds:.1f}s; k={args.k}, hnsw.ef_search={ef_search}, {args.queries} queries")
            print(f"plan, index : {plan_of(conn, params_for(chosen[0]), exact=False)}")
            print(f"plan, peer  : {plan_of(conn, params_for(chosen[0]), exact=True)}")

            for artifact_id in chosen[:10]:  # warm the caches for all three
                fp.similar_versions(conn, artifact_id, k=args.k)
                nearest_query(conn, params_for(artifact_id), exact=True)

            timings = {"similar_versions()": [], "query via HNSW": [], "query, exact scan (peer)": []}
            recalls, methods = [], set()
            for artifact_id in chosen:
                params = params_for(artifact_id)
                clock = time.perf_counter()
                found = fp.similar_versions(conn, artifact_id, k=args.k)
                timings["similar_versions()"].append(time.perf_counter() - clock)
                methods.add(found.method)
                clock = time.perf_counter()
                approximate = nearest_query(conn, params, exact=False)
                timings["query via HNSW"].append(time.perf_counter() - clock)
                clock = time.perf_counter()
                exact = nearest_query(conn, params, exact=True)
                timings["query, exact scan (peer)"].append(time.perf_counter() - clock)
                recalls.append(len({r["artifact_id"] for r in approximate} & {r["artifact_id"] for r in exact})
                               / len(exact))

        print(f"\n{'':28}{'median ms':>10}{'p95 ms':>10}")
        for name, samples in timings.items():
            median, p95 = summary(samples)
            print(f"{name:28}{median:10.2f}{p95:10.2f}")
        hnsw_median = summary(timings["query via HNSW"])[0]
        exact_median = summary(timings["query, exact scan (peer)"])[0]
        print(f"\nexact / HNSW median ratio: {exact_median / hnsw_median:.1f}x; "
              f"similar_versions() answered by: {', '.join(sorted(methods))}")
        print(f"HNSW recall of the exact top {args.k}: mean {statistics.mean(recalls):.3f}, "
              f"min {min(recalls):.2f}")
        print(f"target: similar_versions() median under 50 ms: "
              f"{'met' if summary(timings['similar_versions()'])[0] < 50 else 'NOT met'}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        if home is not None:
            embedded.stop_server(home)
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
