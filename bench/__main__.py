"""`./dev bench`: run the benchmark suite, write bench/results/latest.json and docs/performance.md.

    ./dev bench                      # everything (about 14 minutes on 2 cores)
    ./dev bench --only fanout        # one scenario (the others keep their last results)
    ./dev bench --smoke --out DIR    # tiny sizes, for the test that keeps the harness alive
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from .procs import GeneratorFailed
from .report import machine, markdown, write_json
from .scenarios import SCENARIOS, SMOKE, Env, Plan

ROOT = Path(__file__).resolve().parent.parent
NOTES = Path(__file__).resolve().parent / "notes.md"  # the human part of docs/performance.md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run just these scenarios")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness, measures nothing")
    parser.add_argument("--runs", type=int, help="runs per figure (median reported)")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of our server into this folder")
    parser.add_argument("--out", type=Path, help="write results.json and performance.md here instead")
    args = parser.parse_args(argv)

    plan = SMOKE if args.smoke else Plan()
    if args.runs:
        plan.runs = args.runs
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10k sockets; children inherit it

    json_path = (args.out / "results.json") if args.out else ROOT / "bench" / "results" / "latest.json"
    md_path = (args.out / "performance.md") if args.out else ROOT / "docs" / "performance.md"
    results = json.loads(json_path.read_text()) if args.only and json_path.exists() else {"scenarios": {}}
    results["machine"] = machine()
    results["plan"] = plan.__dict__

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        env = Env(Path(tmp), profile_dir=args.profile)
        try:
            for name in args.only or list(SCENARIOS):
                t0 = time.monotonic()
                print(f"bench: {name} ...", file=sys.stderr, flush=True)
                try:
                    results["scenarios"][name] = SCENARIOS[name](env, plan)
                    results.setdefault("measured", {})[name] = results["machine"]["when"]
                except GeneratorFailed as exc:
                    print(f"bench: {name} failed: {exc}", file=sys.stderr, flush=True)
                    return 1
                print(f"bench: {name} done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
                write_json(json_path, results)  # keep what is done if a later scenario fails
        finally:
            env.close()
    if not args.only:
        results["seconds"] = time.monotonic() - started  # the whole suite must stay under 15 minutes
    results["notes"] = NOTES.read_text() if NOTES.exists() and not args.smoke else ""
    write_json(json_path, results)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(results, plan.runs, "./dev bench" + (" --smoke" if args.smoke else "")))
    print(f"bench: finished in {time.monotonic() - started:.0f}s; wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
