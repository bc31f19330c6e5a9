"""Processes for the benchmarks: the server under test on one core, load generators on the
other, each generator a separate process so that the generator is not the limit."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]

SPAWN = mp.get_context("spawn")  # no inherited event loops, sockets or threads
SERVER_CPUS = {0}
LOAD_CPUS = {1}


def cpus_for(wanted: set[int]) -> set[int]:
    """The wanted cores when the machine has them; every core otherwise."""
    have = os.sched_getaffinity(0)
    return wanted if wanted <= have and len(have) > 1 else have


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a process (threads started later inherit it)."""
    for thread in psutil.Process(pid).threads():
        try:
            os.sched_setaffinity(thread.id, cpus_for(cpus))
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Usage:
    """CPU seconds and resident memory of a process, read twice to get what happened between."""

    pid: int
    cpu: float = 0.0
    rss: int = 0

    def read(self) -> Usage:
        proc = psutil.Process(self.pid)
        times = proc.cpu_times()
        return Usage(self.pid, times.user + times.system, proc.memory_info().rss)


Role = Callable[..., Coroutine[Any, Any, Any]]


class Control:
    """What a generator process gets besides its arguments: a barrier shared with the
    conductor (everyone is connected; go) and a place for its result."""

    def __init__(self, barrier: Any, results: Any) -> None:
        self._barrier = barrier
        self._results = results

    async def sync(self) -> None:
        await asyncio.to_thread(self._barrier.wait, 600)

    def report(self, value: Any) -> None:
        self._results.put(value)

    def flush(self) -> None:
        """Make sure reports are written before a role ends its process abruptly."""
        self._results.close()
        self._results.join_thread()


class GeneratorFailed(RuntimeError):
    """A load generator failed: the message names it and says why, in one line."""


def _generator_main(name: str, role: Role, args: tuple[Any, ...], barrier: Any, results: Any) -> None:
    os.sched_setaffinity(0, cpus_for(LOAD_CPUS))
    try:
        asyncio.run(role(Control(barrier, results), *args))
    except threading.BrokenBarrierError:
        # Someone else gave up first (another generator, or the conductor): their error is
        # the one to tell, not this one's wait being cut short.
        results.put({"error": f"{name}: stopped waiting, someone else gave up", "secondary": True})
        raise SystemExit(1) from None
    except BaseException as exc:
        results.put({"error": f"{name}: {exc!r}"})
        barrier.abort()  # the conductor and the other generators stop waiting for this one
        raise SystemExit(1) from None  # the conductor tells it, in one line


@dataclass
class Generators:
    """A group of generator processes running roles in step with the conductor.

    Every `sync()` in a role meets the conductor's `sync()`; `results()` collects one report
    per process."""

    roles: list[tuple[Role, tuple[Any, ...]]]
    procs: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._barrier = SPAWN.Barrier(len(self.roles) + 1)
        self._results = SPAWN.Queue()

    def start(self) -> Generators:
        for n, (role, args) in enumerate(self.roles, 1):
            name = f"generator {n} ({role.__name__})"
            proc = SPAWN.Process(target=_generator_main, args=(name, role, args, self._barrier, self._results), daemon=True)
            proc.start()
            self.procs.append(proc)
        return self

    def sync(self, timeout: float = 600) -> None:
        try:
            self._barrier.wait(timeout)
        except threading.BrokenBarrierError:
            self.results(timeout=5)  # raises with the failing generator's error
            raise

    def results(self, timeout: float = 600) -> list[Any]:
        got: list[Any] = []
        secondary: str | None = None
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                report = self._results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                if secondary is not None:
                    break
                silent = [n for n, proc in enumerate(self.procs, 1) if not proc.is_alive() and proc.exitcode]
                raise GeneratorFailed(f"load generator {silent or ''} did not report") from None
            if isinstance(report, dict) and "error" in report:
                if report.get("secondary"):
                    secondary = report["error"]
                    deadline = min(deadline, time.monotonic() + 5)  # the one who gave up first reports too
                    continue
                self.stop(failed=True)
                raise GeneratorFailed(f"load {report['error']}")
            got.append(report)
        if secondary is not None:
            self.stop(failed=True)
            raise GeneratorFailed(f"load {secondary}")
        return got

    def stop(self, failed: bool = False) -> None:
        """A normal end lets every generator finish on its own; only a failure (or a generator
        that does not end) cuts the others' waits short. Aborting the barrier at once raced
        generators just released from their last `sync()`."""
        if not failed:
            for proc in self.procs:
                proc.join(30)
        self._barrier.abort()
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()

    def __enter__(self) -> Generators:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        self.stop(failed=exc_type is not None)


class ServerProcess:
    """A reference server (bare websockets, python-socketio) in its own pinned process."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self.proc = SPAWN.Process(target=target, args=args, daemon=True)

    def __enter__(self) -> ServerProcess:
        self.proc.start()
        assert self.proc.pid is not None
        time.sleep(0.05)
        pin(self.proc.pid, SERVER_CPUS)
        return self

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")
