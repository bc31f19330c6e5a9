"""The server is killed (SIGKILL) while several widgets, two operators and a Telegram bot keep it
busy, then started again: every acknowledged message is stored once, in its sender's order, and
every client sees each message of its conversations exactly once, in order, after resuming.

A real `chat-server serve` process on SQLite and on PostgreSQL; Telegram is the local Bot API
server the process long-polls (Telegram's acknowledgement is the offset the poller asks from)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.channel_helpers import add_channel, fixture
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.harness import ChatServer, api, create_operator, login, visitor
from tests.resilient_clients import FollowingOperator, ResilientVisitor, until

pytestmark = pytest.mark.anyio

WIDGETS, PER_WIDGET, TELEGRAM, PER_OPERATOR = 3, 12, 12, 6
TELEGRAM_USER = 111222333


def telegram_update(tg: FakeBotApi, n: int) -> dict[str, Any]:
    update = fixture("telegram", "text")
    update["update_id"] = tg.next_update_id()
    update["message"].update(message_id=100 + n, text=f"tg {n}")
    return update


async def catch_up(server: ChatServer, widget: ResilientVisitor, last_seq: int) -> None:
    """The widget opens once more after the run and shows what it has not shown yet (up to the
    stored thread's end), then nothing more."""
    sock, _ = await visitor(server, token=widget.token, last_seq=widget.last_seq)
    while widget.last_seq < last_seq:
        if (frame := await sock.recv(10))["type"] == "message":
            widget.show(frame["message"])
    assert not [f for f in await sock.settled(10) if f["type"] == "message"]
    await sock.close()


async def stored_threads(server: ChatServer, token: str) -> dict[int, list[dict[str, Any]]]:
    async with api(server, token) as http:
        conversations = (await http.get("/conversations", params={"limit": "200"})).json()["items"]
        threads = {}
        for c in conversations:
            r = await http.get(f"/conversations/{c['id']}/messages", params={"limit": "200"})
            threads[c["id"]] = r.json()["items"]
    return threads


async def test_sigkill_under_load_from_widgets_operators_and_telegram_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path,
) -> None:
    # A reply being sent when the process dies is retried once its lease ends: one send's
    # timeout and ten seconds (two minutes and more by default).
    server = ChatServer(tmp_path, db_url, CHAT_OUTBOUND_SEND_TIMEOUT="3")
    server.start()
    total = WIDGETS * PER_WIDGET + TELEGRAM + 2 * PER_OPERATOR
    try:
        async with FakeBotApi() as tg:
            admin_token = await login(server)
            async with api(server, admin_token) as http:
                http.timeout = httpx.Timeout(30)  # the machine running the suite is busy
                await add_channel(http, "telegram", {"token": TOKEN, "api_base": tg.base, "mode": "polling",
                                                     "poll_timeout": 1})
            second_token = await create_operator(server, admin_token, "second@example.com")
            widgets = [ResilientVisitor(server, [f"w{w} says {i}" for i in range(PER_WIDGET)], prefix=f"w{w}",
                                        pause=0.1)
                       for w in range(WIDGETS)]
            operators = [FollowingOperator(server, token, [f"op{o} answers {i}" for i in range(PER_OPERATOR)],
                                           prefix=f"op{o}", pause=0.3)
                         for o, token in enumerate([admin_token, second_token])]
            crashed = anyio.Event()

            async def telegram_customer() -> None:
                for n in range(TELEGRAM):
                    tg.queue_update(telegram_update(tg, n))
                    await asyncio.sleep(0.15)

            async def crash_mid_run() -> None:
                await until(lambda: sum(len(w.acked) for w in widgets) >= 12
                            and sum(len(o.acked) for o in operators) >= 2, 30)
                await anyio.to_thread.run_sync(server.stop, signal.SIGKILL)
                crashed.set()
                # Generous: a start on a busy machine compiles and imports for many seconds.
                await anyio.to_thread.run_sync(lambda: server.start(timeout=120))

            with anyio.fail_after(180):
                async with anyio.create_task_group() as tg_tasks:
                    for o in operators:
                        tg_tasks.start_soon(o.run, total)
                    await asyncio.sleep(0.2)  # the inboxes are open before the first message
                    for w in widgets:
                        tg_tasks.start_soon(w.run)
                    tg_tasks.start_soon(telegram_customer)
                    tg_tasks.start_soon(crash_mid_run)

            assert crashed.is_set()
            assert all(w.reconnects >= 1 for w in widgets) and all(o.closes for o in operators), \
                "the crash did not land mid-run"
            threads = await stored_threads(server, admin_token)
            assert sum(len(t) for t in threads.values()) == total, "stored more or fewer messages than sent"

            # Each widget's messages: stored once, in the order typed, as acknowledged.
            for w in widgets:
                [thread] = [t for t in threads.values() if t[0]["client_msg_id"] == w.outbox[0][0]]
                await catch_up(server, w, thread[-1]["seq"])
                mine = [m for m in thread if m["direction"] == "inbound"]
                assert [m["client_msg_id"] for m in mine] == [cid for cid, _ in w.outbox]
                assert [m["id"] for m in mine] == [w.acked[cid] for cid, _ in w.outbox]
                # The widget showed its whole conversation, operators' answers included, once each.
                assert [m["id"] for m in w.shown] == [m["id"] for m in thread]
            # Each operator's answers: stored once, in the conversation it chose, as acknowledged.
            for o in operators:
                for cid, _ in o.replies:
                    [stored] = [m for t in threads.values() for m in t if m["client_msg_id"] == cid]
                    assert (stored["conversation_id"], stored["id"]) == (o.reply_to[cid], o.acked[cid])
                # Both inboxes showed every message of every conversation once, in order.
                assert {c: [m["id"] for m in t] for c, t in o.threads.items()} == \
                    {c: [m["id"] for m in t] for c, t in threads.items()}
            # Telegram's updates: each stored once, in the order the customer sent them.
            [tg_thread] = [t for t in threads.values() if t[0]["channel"] == "telegram"]
            assert [m["text"] for m in tg_thread if m["direction"] == "inbound"] == [
                f"tg {n}" for n in range(TELEGRAM)]
            # The operators' answers there went out to Telegram, in order. A send cut off by the
            # crash after Telegram took it but before we recorded it may go twice (the Bot API
            # has no idempotency key): a repeat, never a loss or a reordering.
            answers = [m["text"] for m in tg_thread if m["direction"] == "outbound"]
            assert answers, "no operator answered the Telegram customer"

            def delivered() -> list[str]:
                out: list[str] = []
                for call in tg.sent():
                    if call.params["chat_id"] in (TELEGRAM_USER, str(TELEGRAM_USER)) and \
                            (not out or out[-1] != call.params["text"]):
                        out.append(call.params["text"])
                return out
            await until(lambda: len(delivered()) >= len(answers), 30)
            assert delivered() == answers
    finally:
        server.stop()
