"""The behaviour benchmark's figures: medians over runs, and the table in the notes.

The table between the markers in bench/notes.md (and in docs/performance.md, which `./dev
bench` builds from the notes) is written by the run that measured it, never by hand.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- behaviour-figures:begin -->", "<!-- behaviour-figures:end -->"
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (same shape as one run)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_of([r[key] for r in runs]) for key in first}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    middle = statistics.median(runs)
    return round(middle) if all(isinstance(r, int) for r in runs) else round(middle, 1)


def table(results: dict[str, Any]) -> str:
    runs = results.get("runs", 1)
    rows = [
        f"Median of {runs} run{'s' if runs != 1 else ''} per database (each with its own reference, measured in the same "
        "run on a copy of the same database); the process's CPU time beside the wall clock.",
        "",
        f"| database | pass | reference (insert only) | cards, scoring, {results['size']['segments']} segments "
        "| per CPU-second: reference / ours "
        "| membership changes | lag p50 | lag p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    each = []
    for kind, found in results["databases"].items():
        for label in ("cold", "warm"):
            ref, ours = found["reference"][label], found["behaviour"][label]
            rows.append(
                f"| {NAMES[kind]} | {label} | {ref['events_per_second']:,} events/s | {ours['events_per_second']:,} events/s "
                f"| {ref['events_per_cpu_second']:,} / {ours['events_per_cpu_second']:,} | {ours['membership_changes']:,} "
                f"| {ours['lag_p50_ms']:,.0f} ms | {ours['lag_p99_ms']:,.0f} ms |")
        runs_of = ", ".join(f"{r['behaviour']['cold']['events_per_second']:,}/{r['behaviour']['warm']['events_per_second']:,}"
                            f" (reference {r['reference']['cold']['events_per_second']:,}/"
                            f"{r['reference']['warm']['events_per_second']:,})" for r in found["runs"])
        each.append(f"{NAMES[kind]}, each run's cold/warm events/s: {runs_of}.")
    return "\n".join([*rows, "", *each])


def write_table(paths: list[Path], text: str) -> None:
    """Replace the figures between the markers in each file that has them."""
    for path in paths:
        if not path.exists():
            continue
        content = path.read_text()
        if BEGIN not in content or END not in content:
            continue
        head, rest = content.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
