"""Start real, throwaway Redis and PostgreSQL servers on loopback for tests.

No mocks: every helper here runs the actual server binary on a free
127.0.0.1 port with its data in a temporary directory.  A missing binary
raises ``RuntimeError`` so the test FAILS (it must never silently skip).

Stdlib only, so it works before the project itself is importable.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypedDict, Unpack
from urllib.parse import quote

__all__ = ["PostgresServer", "RedisServer", "free_port", "require_binary"]

_PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"

# Which Debian package provides a binary, for the error message.
_PACKAGES = {
    "redis-server": "redis-server",
    "initdb": "postgresql",
    "postgres": "postgresql",
    "pg_ctl": "postgresql",
    "createdb": "postgresql",
    "pg_isready": "postgresql",
}


class _AsUser(TypedDict, total=False):
    """Extra Popen arguments that run a child as another OS user."""

    user: int
    group: int
    extra_groups: list[int]
    cwd: str


def free_port() -> int:
    """Ask the kernel for a currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_binary(name_or_path: str, package: str | None = None) -> str:
    """Return the absolute path of an executable or raise a clear RuntimeError."""
    if os.sep in name_or_path:
        found = name_or_path if os.access(name_or_path, os.X_OK) else None
    else:
        found = shutil.which(name_or_path)
    if found is None:
        name = os.path.basename(name_or_path)
        pkg = package or _PACKAGES.get(name, name)
        raise RuntimeError(f"{name} not installed: run .ci/run or apt-get install {pkg}")
    return found


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Managed:
    """Shared process bookkeeping: log file, stop on exit, context manager."""

    _proc: subprocess.Popen[bytes] | None
    _log: IO[bytes] | None

    def __init__(self) -> None:
        self._proc = None
        self._log = None
        self._atexit_registered = False

    def _spawn(self, argv: list[str], log_path: Path, **kwargs: Unpack[_AsUser]) -> None:
        # Log to a file, not a pipe: nobody drains a pipe, so a chatty
        # server would eventually block on a full pipe buffer.
        self._log = open(log_path, "ab")  # closed in _reap()
        try:
            # Same session/process group as the test run, so a Ctrl-C in
            # the terminal reaches the servers too.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=False,
                **kwargs,
            )
        except BaseException:
            self._log.close()
            self._log = None
            raise
        if not self._atexit_registered:
            # If the test process exits without stopping us, stop anyway.
            atexit.register(self.close)
            self._atexit_registered = True

    def _reap(self, sig: int, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _check_alive(self, what: str, log_path: Path) -> None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self._reap(signal.SIGTERM, 1)
            raise RuntimeError(f"{what} exited with code {code}:\n{_log_tail(log_path)}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop and release everything; safe to call more than once."""
        self.stop()
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Managed):
    """A private redis-server without persistence.  The port survives restarts."""

    def __init__(self, tmpdir: Path) -> None:
        super().__init__()
        self.tmpdir = Path(tmpdir)
        self.port = free_port()
        self.log_path = self.tmpdir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        binary = require_binary("redis-server")
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        # fmt: off
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
        ]
        # fmt: on
        self._spawn(argv, self.log_path)
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("redis-server", self.log_path)
            if self._ping():
                return
            if time.monotonic() > deadline:
                self._reap(signal.SIGKILL, 5)
                raise RuntimeError(
                    f"redis-server did not answer PING within {timeout}s:\n"
                    f"{_log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        self._reap(signal.SIGTERM, 10)

    def restart(self) -> None:
        self.stop()
        self.start()


class S3Server(_Managed):
    """A local server speaking the S3 wire protocol (moto's standalone server), for the
    object-storage tests: the real AWS SDK signs and sends real HTTP requests to it."""

    def __init__(self, tmpdir: Path) -> None:
        super().__init__()
        self.tmpdir = Path(tmpdir)
        self.port = free_port()
        self.log_path = self.tmpdir / f"s3-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._spawn(argv, self.log_path)
        deadline = time.monotonic() + timeout
        while not _tcp_accepts(self.port):
            self._check_alive("the S3 server", self.log_path)
            if time.monotonic() > deadline:
                self._reap(signal.SIGKILL, 5)
                raise RuntimeError(f"the S3 server did not listen within {timeout}s:\n{_log_tail(self.log_path)}")
            time.sleep(0.1)

    def stop(self) -> None:
        self._reap(signal.SIGTERM, 10)


def _pg_version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def _pg_binary(name: str) -> str:
    """Find a PostgreSQL binary: newest /usr/lib/postgresql/*/bin, then PATH."""
    for bindir in sorted(glob.glob(_PG_BIN_GLOB), key=_pg_version_key, reverse=True):
        candidate = os.path.join(bindir, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return require_binary(name, "postgresql")


class PostgresServer(_Managed):
    """A private PostgreSQL cluster tuned for speed over durability.

    Running as root: PostgreSQL refuses to run as root, so initdb and the
    server run as the ``postgres`` OS user.  pytest's ``tmp_path`` lives
    under a 0700 root-owned directory that user cannot enter, so in that case
    the cluster (data + unix socket) goes in its own ``/tmp/chat-test-pg-*``
    directory owned by ``postgres``, removed by ``close()``.  The server log
    always goes to ``tmpdir``.
    """

    def __init__(self, tmpdir: Path) -> None:
        super().__init__()
        self.tmpdir = Path(tmpdir)
        self.port = free_port()
        self.log_path = self.tmpdir / f"postgres-{self.port}.log"
        self._as_root = os.geteuid() == 0
        self._base: Path | None = None  # holds data/ and sock/

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _user_kwargs(self) -> _AsUser:
        if not self._as_root:
            return {}
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root but there is no 'postgres' OS user: "
                "run .ci/run or apt-get install postgresql"
            ) from None
        # Popen(user=...) switches uid/gid in the child before exec, so the
        # child IS postgres (no runuser in between to swallow or translate
        # our shutdown signal).  extra_groups=[] drops root's groups.
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}

    def _prepare_base(self) -> Path:
        if self._base is not None:
            return self._base
        if self._as_root:
            base = Path(tempfile.mkdtemp(prefix="chat-test-pg-"))
            pw = pwd.getpwnam("postgres")
            os.chown(base, pw.pw_uid, pw.pw_gid)
            for sub in ("data", "sock"):
                (base / sub).mkdir(mode=0o700)
                os.chown(base / sub, pw.pw_uid, pw.pw_gid)
        else:
            base = self.tmpdir / f"pg-{self.port}"
            for sub in ("data", "sock"):
                (base / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._base = base
        return base

    @property
    def data_dir(self) -> Path:
        return self._prepare_base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._prepare_base() / "sock"

    def _run(
        self, argv: list[str], **kwargs: Unpack[_AsUser]
    ) -> subprocess.CompletedProcess[bytes]:
        with open(self.log_path, "ab") as log:
            return subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                **kwargs,
            )

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return  # keep data across stop()/start()
        initdb = _pg_binary("initdb")
        common = [initdb, "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
                  "--encoding=UTF8", "--no-sync"]  # fmt: skip
        for locale_args in (["--locale=C.UTF-8"], ["--no-locale"]):
            if self._run(common + locale_args, **self._user_kwargs()).returncode == 0:
                return
            # A failed initdb may leave files behind; it needs an empty dir.
            for child in self.data_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise RuntimeError(f"initdb failed:\n{_log_tail(self.log_path)}")

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        postgres = _pg_binary("postgres")
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self._initdb()
        # fmt: off
        argv = [
            postgres,
            "-D", str(self.data_dir),
            "-h", "127.0.0.1",
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]
        # fmt: on
        self._spawn(argv, self.log_path, **self._user_kwargs())
        try:
            pg_isready: str | None = _pg_binary("pg_isready")
        except RuntimeError:
            pg_isready = None
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("postgres", self.log_path)
            if _tcp_accepts(self.port) and (pg_isready is None or self._isready(pg_isready)):
                return
            if time.monotonic() > deadline:
                self._reap(signal.SIGQUIT, 5)
                raise RuntimeError(
                    f"postgres not ready within {timeout}s:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _isready(self, pg_isready: str) -> bool:
        argv = [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port),
                "-U", "postgres", "-d", "postgres", "-t", "2"]  # fmt: skip
        return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode == 0

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy asyncpg URL."""
        if not self.running:
            raise RuntimeError("PostgresServer is not running; call start() first")
        createdb = _pg_binary("createdb")
        # Over TCP with trust auth, so this works as any OS user.
        argv = [createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "--", name]  # fmt: skip
        if self._run(argv).returncode != 0:
            raise RuntimeError(f"createdb {name!r} failed:\n{_log_tail(self.log_path)}")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{quote(name, safe='')}"

    def stop(self) -> None:
        # SIGINT = "fast" shutdown: disconnect clients, checkpoint, exit.
        self._reap(signal.SIGINT, 30)

    def close(self) -> None:
        super().close()
        # Only delete the cluster if we made it outside tmpdir (root case);
        # otherwise it lives in tmpdir and pytest cleans it up.
        if self._base is not None and self._as_root:
            shutil.rmtree(self._base, ignore_errors=True)
        self._base = None
