"""Results as JSON and as the tables of docs/performance.md, with the machine they came from."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    versions = {name: version(name) for name in
                ["starlette", "uvicorn", "websockets", "sqlalchemy", "aiosqlite", "asyncpg", "redis", "python-socketio"]}
    for binary, flag in [("redis-server", "--version")]:
        try:
            versions[binary] = subprocess.run([binary, flag], capture_output=True, text=True, check=False).stdout.split()[2]
        except (OSError, IndexError):
            versions[binary] = "missing"
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "versions": versions,
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "met" if value else "**missed**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(_f(c) for c in row) + " |" for row in rows], ""]


def _measured(results: dict[str, Any], scenario: str) -> list[str]:
    """A scenario kept from an earlier run (`--only` ran others) says which run its figures are from."""
    when = results.get("measured", {}).get(scenario)
    if when is None or when == results["machine"]["when"]:
        return []
    return [f"*These figures are from the run of {when}, kept when a later `--only` run measured other scenarios.*", ""]


def markdown(results: dict[str, Any], runs: int, command: str) -> str:
    m = results["machine"]
    out = [
        "# Performance",
        "",
        f"Measured {m['when']} with `{command}` on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
        f"Linux {m['kernel']}. Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        (f"The whole suite took {results['seconds'] / 60:.1f} minutes. " if "seconds" in results else "")
        + f"Every figure is the median of {runs} runs. The server under test is pinned to core 0 and the load "
        "generators (separate processes, at least two) to core 1; everything runs on loopback. Each "
        "figure stands beside a reference measured in the same run, because absolute times on a shared "
        "machine drift. How to read each scenario and where the time goes: see the history and analysis below the tables.",
        "",
    ]
    s = results["scenarios"]
    if "idle_connections" in s:
        out += ["## 1. Idle widget connections", "", *_measured(results, "idle_connections"),
                "Widgets connected after the hello/welcome handshake (each one a visitor with a contact row), "
                "against a bare `websockets` server holding the same number of connections after a one-frame "
                "hello. Target: RSS per connection at most 2x the reference.", ""]
        out += _table(["connections", "ours KiB/conn", "reference KiB/conn", "ratio", "ours connects/s",
                       "reference connects/s", "target"],
                      [[r["connections"], r["ours"]["rss_per_conn_kib"], r["reference"]["rss_per_conn_kib"],
                        r["memory_ratio"], r["ours"]["connects_per_s"], r["reference"]["connects_per_s"], r["met"]]
                       for r in s["idle_connections"]])
    if "latency" in s:
        out += ["## 2. Visitor → operator latency, with persistence", "", *_measured(results, "latency"),
                "From the visitor's send to the operator's receive (clock shared by the processes), messages "
                "spread round-robin over 2x"
                f"{results['plan']['latency_visitors']} conversations at a steady rate. Reference: the bare "
                "relay at the same rate, no database. Target: p99 ≤ 25 ms at 500 msg/s.", ""]
        out += _table(["database", "msg/s", "p50 ms", "p95 ms", "p99 ms", "lost", "server CPU µs/msg", "statements/msg",
                       "reference p50", "reference p99", "reference CPU µs/msg", "target"],
                      [[r["database"], r["rate"], r["ours"]["p50_ms"], r["ours"]["p95_ms"], r["ours"]["p99_ms"],
                        r["ours"]["lost"], r["ours"].get("cpu_us_per_message"),
                        r["ours"].get("db_statements_per_message", "—"), r["reference"]["p50_ms"],
                        r["reference"]["p99_ms"], r["reference"].get("cpu_us_per_message"), r["met"]]
                       for r in s["latency"]])
    if "fanout" in s:
        out += ["## 3. Fan-out throughput", "", *_measured(results, "fanout"),
                "Visitors keep a window of messages in flight; every message goes to every operator and back to "
                "its sender. A delivery is one message frame received by a client. CPU is the server's (plus "
                "Redis for socket.io). Target: at least 50 % of the bare relay's deliveries per CPU-second.", ""]
        rows = []
        for r in s["fanout"]:
            for name, key in [("ours (SQLite, persisted)", "ours"), ("bare websockets relay", "reference"),
                              ("python-socketio + Redis manager", "socketio_redis")]:
                v = r[key]
                rows.append([name, v["deliveries_per_s"], v["deliveries_per_cpu_s"], v["cpu_us_per_delivery"],
                             v["messages_per_s"]])
            rows.append([f"ours / reference: {r['efficiency_vs_reference']:.0%}", "", "", "", r["met"]])
        out += _table(["server", "deliveries/s", "deliveries per CPU-s", "CPU µs per delivery", "messages/s"], rows)
    if "across_processes" in s:
        out += ["## 4. Across processes (Redis)", "", *_measured(results, "across_processes"),
                "Two server processes on PostgreSQL and Redis: visitors on one, the operator on the other, "
                "against one process without Redis on the same database. Then Redis is restarted halfway through a run: every "
                "acknowledged message must still reach the operator (recovered by resume).", ""]
        rows = [[r["rate"], r["same_process"]["p50_ms"], r["same_process"]["p99_ms"], r["across_processes"]["p50_ms"],
                 r["across_processes"]["p99_ms"], r["redis_hop_p99_ms"], r["redis_restart"]["acked"],
                 r["redis_restart"]["received"], r["redis_restart"]["lost"], r["met"]]
                for r in s["across_processes"]]
        out += _table(["msg/s", "one process p50 ms", "one process p99 ms", "across p50 ms", "across p99 ms",
                       "Redis hop p99 ms", "acked during restart", "received", "lost", "target"], rows)
    if "reconnect_storm" in s:
        out += ["## 5. Reconnect storm", "", *_measured(results, "reconnect_storm"),
                "Every visitor has a conversation; all drop at once and reconnect at once with resume. Time until "
                "every one has its welcome and its thread back; database statements (transaction control "
                "included) per reconnect, from the server's `chat_db_statements_total`.", ""]
        out += _table(["clients", "seconds until all resynced", "reconnected", "attempts retried (backoff)",
                       "statements per reconnect"],
                      [[r["clients"], r["ours"]["seconds_until_all_resynced"], r["ours"]["reconnected"],
                        r["ours"].get("retries", 0), r["ours"]["db_statements_per_reconnect"]]
                       for r in s["reconnect_storm"]])
    if "triggers" in s:
        out += _triggers(results, s["triggers"])
    notes = results.get("notes")
    if notes:
        described, _, body = notes.partition("\n")
        run = described.removeprefix("Describes: ").strip()
        out += ["## History and analysis", "",
                f"*Written about the run of {run}*"
                + ("." if run == m["when"] else f", not the run that produced the tables above ({m['when']}): "
                   "its figures are that run's, quoted to explain what changed and where the time goes."),
                "", body.strip(), ""]
    return "\n".join(out)


def _triggers(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    first = rows[0]
    when = results.get("measured", {}).get("triggers", results["machine"]["when"])
    out = ["## 6. Trigger engine", "", *_measured(results, "triggers"),
           f"Measured {when}, median of {results['plan']['runs']} runs. "
           f"{first['triggers']} active triggers over {first['contacts']:,} contacts (with {first['segments']} segments and "
           f"{first['rules']} scoring rules, in both databases), in one server process. The site's backend posts event "
           "batches (`POST /api/v1/track`, 70 % page views) as fast as the server answers, while new widgets send probe "
           "events that undelayed widget-chat triggers answer; the latency is from a probe's send to its message on "
           "the widget's socket. Reference: a second server on a copy of the same database without triggers, sent the "
           "same traffic, run by run in turn. Then the same on ours at half the rate it reached: the latency below "
           "saturation. Targets: ≥ 5,000 events/s with the triggers, p99 ≤ 100 ms.", ""]
    out += _table(["database", "reference events/s", "with triggers events/s", "ours / reference",
                   "events per CPU-s: reference / ours", "statements per event: reference / ours", "target"],
                  [[r["database"], r["reference"]["events_per_s"], r["ours"]["events_per_s"], f"{r['rate_ratio']:.0%}",
                    f"{r['reference']['events_per_cpu_s']:,.0f} / {r['ours']['events_per_cpu_s']:,.0f}",
                    f"{r['reference']['statements_per_event']:.2f} / {r['ours']['statements_per_event']:.2f}",
                    r["ours"]["events_per_s"] >= 5000] for r in rows])
    lat = []
    for r in rows:
        calm = r["below_saturation"]
        for label, v, met in [("at saturation", r["ours"], None),
                              (f"at {calm['rate']:,.0f} events/s", calm, calm["p99_ms"] <= 100)]:
            lat.append([r["database"], label, f"{v['received']:.0f} of {v['probes']:.0f}", v["p50_ms"], v["p95_ms"],
                        v["p99_ms"], met])
    out += _table(["database", "load", "messages received", "p50 ms", "p95 ms", "p99 ms", "target"], lat)
    return out
