"""The behaviour benchmark's harness stays alive (tiny sizes; it measures nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_behaviour_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "behaviour.json"
    run = subprocess.run([sys.executable, "-m", "bench.behaviour", "--smoke", "--only", "sqlite", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())["databases"]["sqlite"]
    for run_ in ("cold", "warm"):
        assert result["reference"][run_]["events"] == result["behaviour"][run_]["events"] == 400
        # Every probe event put its contact into the probe segment, in the event's own transaction.
        assert result["behaviour"][run_]["probe_members"] == result["behaviour"][run_]["probes"] == 40
