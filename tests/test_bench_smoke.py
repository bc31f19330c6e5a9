"""The benchmark harness at toy sizes, so it does not rot between benchmark runs. It checks
that every scenario runs and counts correctly; it measures nothing (speed lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT


def test_every_scenario_runs_and_counts(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    s = results["scenarios"]
    assert set(s) == {"idle_connections", "latency", "fanout", "across_processes", "reconnect_storm", "triggers"}
    idle = s["idle_connections"][0]
    assert idle["ours"]["connected"] == idle["reference"]["connected"] == idle["connections"]
    for row in s["latency"]:
        assert row["ours"]["lost"] == 0 and row["ours"]["acked"] == row["ours"]["sent"] > 0
        assert row["ours"]["received"] == row["ours"]["sent"]
        # Recorded for the performance page; at most a lone message's BEGIN, lock, insert, update
        # (fewer when messages share a batch). The exact counts are pinned in test_statement_budget.
        assert 0 < row["ours"]["db_statements_per_message"] <= 4.0
    fan = s["fanout"][0]
    for server in ("ours", "reference", "socketio_redis"):
        assert fan[server]["deliveries_per_s"] > 0 and fan[server]["cpu_us_per_delivery"] > 0
    across = s["across_processes"][0]
    assert across["across_processes"]["received"] == across["across_processes"]["sent"]
    assert across["redis_restart"]["lost"] == 0 and across["redis_restart"]["received"] > 0
    storm = s["reconnect_storm"][0]
    assert storm["ours"]["reconnected"] == storm["clients"] and storm["ours"]["db_statements_per_reconnect"] > 0
    for row in s["triggers"]:
        assert row["reference"]["events"] > 0 and row["ours"]["events"] > 0
        # Every probe event fired its trigger and the message reached that widget, under load and below it.
        for phase in (row["ours"], row["below_saturation"]):
            assert phase["received"] == phase["probes"] > 0 and phase["p99_ms"] > 0
    table = (tmp_path / "performance.md").read_text()
    for heading in ("Idle widget connections", "latency", "Fan-out", "Across processes", "Reconnect storm",
                    "Trigger engine"):
        assert heading in table
