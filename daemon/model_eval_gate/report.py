"""The WS1 migration report: each legacy artifact's old and new state, and what is held for review.

Rendered only from database state (never the clock), so a second backfill
rewrites the identical file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence


def _json_block(value) -> str:
    return "```json\n" + json.dumps(value, indent=2, sort_keys=True, default=str) + "\n```"


# Why an adopted artifact is in each state, for the summary.
_STATE_NOTES = {
    "promoted": "legacy models already in service",
    "candidate": "pending the eval gate: biophysical ODE models, or legacy models not in service",
    "rejected": "rejected by the eval gate after the backfill",
    "superseded": "superseded by a newer promoted version after the backfill",
}


def render_migration_report(rows: Sequence[Mapping]) -> str:
    # Titles need not be unique: the id breaks ties, so the same database
    # always renders the same bytes.
    rows = sorted(rows, key=lambda r: (r["title"], r["artifact_id"]))
    held = sum(len(r["review_items"]) for r in rows)
    states: dict[str, int] = {}
    for r in rows:
        states[r["promotion_state"]] = states.get(r["promotion_state"], 0) + 1
    lines = [
        "# WS1 migration report: model artifacts to model_versions",
        "",
        "Written by `model-eval-gate backfill`. Each legacy model artifact received a",
        "`model_versions` row through the catalog's registration path; its metadata was",
        "normalised only where a legacy key was a plain rename of a schema field, then",
        "re-validated against `schemas/model_artifact_metadata.json`. Anything that would",
        "need interpretation (a rounded parameter count, a missing dataset, an unpinned",
        "commit) is held for human review in `model_review_items`, never guessed.",
        "The backfill rejects no artifact; the states below are the current ones.",
        "",
        f"- artifacts adopted: {len(rows)}",
        *(f"- promotion_state {state}: {count} ({_STATE_NOTES.get(state, 'set after the backfill')})"
          for state, count in sorted(states.items())),
        f"- items held for review: {held}",
        "",
        "| artifact | title | promotion_state | metadata valid | held for review |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['artifact_id']}` | {r['title']} | {r['promotion_state']} | "
                     f"{'yes' if r['metadata_valid'] else 'no'} | {len(r['review_items'])} |")
    for r in rows:
        legacy_state = r["legacy_state"]
        extracted = r["extracted"]
        lines += [
            "",
            f"## {r['title']}",
            "",
            f"`{r['artifact_id']}`",
            "",
            "| | before WS1 | after WS1 |",
            "|---|---|---|",
            f"| lifecycle_state | {legacy_state.get('lifecycle_state')} | {r['lifecycle_state']} |",
            f"| is_latest | {legacy_state.get('is_latest')} | {r['is_latest']} |",
            f"| model_versions row | none | promotion_state={r['promotion_state']}, is_external={r['is_external']} |",
            f"| code pin | none | repo={r['code_repo_url'] or '-'}, commit={r['code_commit_sha'] or '-'}, "
            f"entrypoint={r['code_entrypoint'] or '-'} |",
            f"| trained_by | - | {r['trained_by'] or '-'} |",
            f"| metadata valid against schema | not checked | {'yes' if r['metadata_valid'] else 'no'} |",
            "",
        ]
        renamed = extracted.get("renamed") or {}
        if renamed:
            lines.append("Normalised fields:")
            lines += [f"- `{field}` {how}" for field, how in sorted(renamed.items())]
            lines.append("")
        if r["review_items"]:
            lines.append("Held for human review:")
            lines += [f"- `{item['field']}`: {item['reason']} (legacy value: `{json.dumps(item['legacy_value'])}`)"
                      for item in r["review_items"]]
        else:
            lines.append("Nothing held for review.")
        lines += ["", "Legacy metadata:", "", _json_block(r["legacy_metadata"]),
                  "", "Metadata now:", "", _json_block(r["current_metadata"])]
    return "\n".join(lines) + "\n"


def write_migration_report(rows: Sequence[Mapping], path: Path) -> Path:
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_migration_report(rows)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
