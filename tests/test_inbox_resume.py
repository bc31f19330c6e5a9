"""An inbox resuming by cursor while messages keep arriving gets each message once.

Found by the crash test under load (tests/test_crash_under_load.py): an inbox socket joined the
fan-out, then awaited the database before it set its cursors; a message published in between
was sent as news, and sent again when the cursors were set and the hole after them filled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chat_server.realtime import inbox
from tests.appserver import AppServer
from tests.harness import login, operator, visitor

pytestmark = pytest.mark.anyio


async def test_a_message_arriving_while_the_inbox_says_hello_is_shown_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    real = inbox.do_mark_inbox_seen

    async def slow_mark(*args: Any) -> None:
        if not entered.is_set():  # the hello's own stamp: held until the test lets it go
            entered.set()
            await release.wait()
        await real(*args)

    async with AppServer(tmp_path, db_url) as app:
        token = await login(app)
        watcher = await operator(app, token)
        v, _ = await visitor(app)
        await v.send(type="message.send", client_msg_id="v1", text="v1")
        await v.expect("ack", client_msg_id="v1")
        conversation_id = (await watcher.expect("message", text="v1"))["message"]["conversation_id"]

        monkeypatch.setattr(inbox, "do_mark_inbox_seen", slow_mark)
        connecting = asyncio.create_task(operator(app, token, {conversation_id: {"seq": 1, "epoch": 1}}))
        await asyncio.wait_for(entered.wait(), 10)
        await v.send(type="message.send", client_msg_id="v2", text="v2")  # while the hello is half done
        await v.expect("ack", client_msg_id="v2")
        await watcher.expect("message", text="v2")  # published: every socket in the fan-out has had it
        release.set()
        op = await asyncio.wait_for(connecting, 10)
        await v.send(type="message.send", client_msg_id="v3", text="v3")
        await v.expect("ack", client_msg_id="v3")
        await op.expect("message", text="v3")
        shown = [f["message"]["seq"] for f in op.seen + await op.settled() if f["type"] == "message"]
        assert shown == [2, 3]
        for sock in (v, watcher, op):
            await sock.close()
