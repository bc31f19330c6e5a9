"""The benchmark's generator processes: a normal end is quiet, a failure is one line naming
which generator failed and why (not a traceback from every process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.procs import Control, GeneratorFailed, Generators
from tests.harness import ROOT


async def waits(ctl: Control) -> None:
    ctl.report({"ok": True})
    await ctl.sync()


async def fails(ctl: Control) -> None:
    raise ValueError("cannot reach the server")


def test_a_failing_generator_is_named_with_its_reason() -> None:
    with pytest.raises(GeneratorFailed) as failed, Generators([(waits, ()), (fails, ())]) as gens:
        gens.results(timeout=60)
        gens.sync(timeout=60)
    assert str(failed.value) == "load generator 2 (fails): ValueError('cannot reach the server')"


def test_generators_that_end_normally_print_nothing() -> None:
    code = ("from bench.procs import Generators\n"
            "from tests.test_bench_harness import waits\n"
            "with Generators([(waits, ()), (waits, ())]) as gens:\n"
            "    assert gens.results(60) == [{'ok': True}] * 2\n"
            "    gens.sync(60)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stderr == "" and run.stdout == "", run.stderr
