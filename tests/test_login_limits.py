"""Logins: argon2 runs off the event loop, failed attempts are limited per (account, address),
per address and per account (429 + Retry-After), shared across processes through Redis, and a
real operator is not locked out by someone guessing at their account from elsewhere."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chat_server.actions import operators
from chat_server.actions.errors import ActionError
from chat_server.actions.operators import do_create_operator, do_login
from chat_server.login_limits import LoginLimits
from chat_server.models import Role
from chat_server.settings import Settings
from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, ChatServer, create_operator, login
from tests.inprocess import make_runtime
from tests.services import RedisServer

pytestmark = pytest.mark.anyio

LIMITS = {"CHAT_LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": "3", "CHAT_LOGIN_FAILURES_PER_ACCOUNT": "5",
          "CHAT_LOGIN_FAILURES_PER_ADDRESS": "8"}


def from_address(server: ChatServer, address: str) -> httpx.AsyncClient:
    """A client whose connections come from another loopback address (all of 127/8 is local)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.http + "/api/v1", transport=transport, timeout=10)


async def attempt(server: ChatServer, address: str, email: str, password: str) -> httpx.Response:
    async with from_address(server, address) as http:
        return await http.post("/auth/login", json={"email": email, "password": password})


async def test_password_hashing_leaves_the_event_loop_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, _ = await make_runtime(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    real = operators._hasher
    loop_thread = threading.get_ident()
    hashing_threads: list[int] = []
    started, release = threading.Event(), threading.Event()

    class Held:
        """Verifies like argon2, but holds on until the test lets go."""

        def hash(self, password: str) -> str:
            hashing_threads.append(threading.get_ident())
            return real.hash(password)

        def verify(self, password_hash: str, password: str) -> bool:
            hashing_threads.append(threading.get_ident())
            started.set()
            release.wait(10)
            return real.verify(password_hash, password)

    monkeypatch.setattr(operators, "_hasher", Held())
    try:
        await do_create_operator(runtime, "Ann", "ann@example.com", "a long password", Role.operator)
        logging_in = asyncio.create_task(do_login(runtime, "ann@example.com", "a long password", "192.0.2.1"))
        assert await asyncio.to_thread(started.wait, 10)
        # The login is inside argon2 right now, and the loop still runs other work: were the
        # hash on the loop, this would wait until the release below, which never comes first.
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0)
            ticks += 1
        assert not logging_in.done() and ticks == 5
        release.set()
        token, operator = await logging_in
        assert operator.email == "ann@example.com" and token
        with pytest.raises(ActionError):
            await do_login(runtime, "ann@example.com", "wrong password", "192.0.2.1")
    finally:
        release.set()
        await runtime.db.dispose()
    assert len(hashing_threads) == 3 and loop_thread not in hashing_threads


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp("login-limits")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", **LIMITS)
    chat.start()
    yield chat
    chat.stop()


async def test_guessing_from_one_address_is_refused_but_other_addresses_log_in(limited: ChatServer) -> None:
    assert (await attempt(limited, "127.0.0.2", ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200
    wrong = [await attempt(limited, "127.0.0.11", ADMIN_EMAIL, f"guess {i}") for i in range(3)]
    assert [r.status_code for r in wrong] == [400, 400, 400]
    blocked = await attempt(limited, "127.0.0.11", ADMIN_EMAIL, ADMIN_PASSWORD)  # even the right one
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(blocked.headers["retry-after"]) <= 900
    assert (await attempt(limited, "127.0.0.2", ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200


async def test_a_successful_login_clears_that_addresss_failures(limited: ChatServer) -> None:
    email = f"typo-{uuid.uuid4().hex[:8]}@example.com"
    await create_operator(limited, await login(limited), email)
    password = "password-" + email
    assert [(await attempt(limited, "127.0.0.12", email, "typo")).status_code for _ in range(2)] == [400, 400]
    assert (await attempt(limited, "127.0.0.12", email, password)).status_code == 200
    # Counted afresh: without the reset the second of these would already be refused.
    assert [(await attempt(limited, "127.0.0.12", email, "typo")).status_code for _ in range(2)] == [400, 400]


async def test_spraying_one_account_from_many_addresses_does_not_lock_out_its_usual_places(limited: ChatServer) -> None:
    email = f"target-{uuid.uuid4().hex[:8]}@example.com"
    await create_operator(limited, await login(limited), email)  # logs in once from 127.0.0.1
    password = "password-" + email
    for address, tries in (("127.0.0.21", 3), ("127.0.0.22", 2)):
        assert [(await attempt(limited, address, email, "guess")).status_code for _ in range(tries)] == [400] * tries
    # Five failures: the account's ceiling. A new place is refused...
    refused = await attempt(limited, "127.0.0.23", email, password)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    # ...the operator's own is not.
    assert (await attempt(limited, "127.0.0.1", email, password)).status_code == 200


async def test_one_address_guessing_many_accounts_is_refused(limited: ChatServer) -> None:
    codes = [(await attempt(limited, "127.0.0.31", f"nobody{i}@example.com", "guess")).status_code for i in range(9)]
    assert codes == [400] * 8 + [429]


async def test_attempts_are_counted_across_processes_through_redis(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    servers = []
    for name in ("a", "b"):
        tmp = tmp_path_factory.mktemp(f"login-redis-{name}")
        servers.append(ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", redis_url=redis_server.url, **LIMITS))
    a, b = servers
    a.start()
    try:
        b.start()
        address = f"127.0.{uuid.uuid4().int % 200 + 20}.1"  # fresh counters in the shared Redis
        assert [(await attempt(a, address, ADMIN_EMAIL, "guess")).status_code for _ in range(3)] == [400] * 3
        assert (await attempt(b, address, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 429
        assert (await attempt(b, "127.0.0.2", ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200
    finally:
        b.stop()
        a.stop()


async def test_logins_go_on_with_limits_in_memory_while_redis_is_unreachable() -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    limits = LoginLimits(Settings(redis_url="redis://127.0.0.1:1/0", login_failures_per_account_address=2))
    try:
        assert await limits.check("ann@example.com", "192.0.2.7") is None
        await limits.failed("ann@example.com", "192.0.2.7")
        await limits.failed("ann@example.com", "192.0.2.7")
        blocked = await limits.check("ann@example.com", "192.0.2.7")
        assert blocked is not None and blocked.retry_after > 0
        await limits.succeeded("ann@example.com", "192.0.2.7")
        assert await limits.check("ann@example.com", "192.0.2.7") is None
    finally:
        await limits.close()
