"""A trigger's message on the best channel available: for a contact who is offline in the
widget and has no messenger, email — rendered, with its unsubscribe link; once they
unsubscribe, the next firing finds no channel and says so, and explain tells the same story."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from chat_server.actions.tracking import TrackItem, do_track
from chat_server.models import Contact
from chat_server.triggers.explain import explain
from chat_server.triggers.worker import TriggerWorker
from tests.appserver import AppServer
from tests.mailservers import SmtpSink

# The automatic email tests' local SMTP server and app, shared rather than set up twice.
from tests.test_automatic_email import app, ca, contact_with_email, mail_to, parts, runtime, sink  # noqa: F401
from tests.trigger_helpers import make_trigger, sends

pytestmark = pytest.mark.anyio

CART = {"name": "Cart reminder", "when": {"type": "event", "event": "cart_abandoned"}, "audience": {"filter": None},
        "delay_seconds": 3600, "channel": "best_available", "limits": {"frequency": "every_time"},
        "variants": [{"name": "A", "weight": 100, "subject": "Your cart, {{ contact.email }}",
                      "text": "Your cart is waiting for you, {{ contact.email }}."}]}


async def test_best_available_falls_back_to_email_and_honours_the_unsubscribe_link(  # noqa: F811 - fixtures
    app: AppServer, sink: SmtpSink,  # noqa: F811
) -> None:
    rt = runtime(app)
    trigger = await make_trigger(rt, **CART)
    olga = await contact_with_email(rt, "olga@example.org")
    async with rt.db.write() as s:  # the card shows the address, as identify or an inbound email leaves it
        card = await s.get(Contact, olga)
        assert card is not None
        card.email = "olga@example.org"
        s.add(card)
    await do_track(rt, [TrackItem(olga, "cart_abandoned", {"amount": 40})])
    [send] = await sends(rt, trigger.id)
    due = send.due_at + timedelta(seconds=1)  # an hour later: no longer online in the widget

    async with rt.db.read() as s:
        before = await explain(s, trigger, olga, due)
    assert before is not None and before["channel"]["chosen"] == "email", before["channel"]
    [outcome] = await TriggerWorker(rt).run_once(due)
    assert outcome.state == "sent", outcome
    [send] = await sends(rt, trigger.id)
    assert send.channel == "email" and send.message_id is not None
    mail = await mail_to(sink, "olga@example.org")
    assert mail["Subject"] == "Your cart, olga@example.org"
    text, _ = parts(mail)
    assert text.startswith("Your cart is waiting for you, olga@example.org.")

    link = re.fullmatch(r"<([^>]+)>", str(mail["List-Unsubscribe"]))
    assert link is not None
    async with httpx.AsyncClient(timeout=10) as http:  # the mail client's one-click unsubscribe
        r = await http.post(link.group(1), content="List-Unsubscribe=One-Click",
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text

    await do_track(rt, [TrackItem(olga, "cart_abandoned", {"amount": 55})])
    later = [x for x in await sends(rt, trigger.id) if x.id != send.id]
    assert len(later) == 1 and later[0].state == "scheduled"
    due = later[0].due_at + timedelta(seconds=1)
    async with rt.db.read() as s:
        after = await explain(s, trigger, olga, due)
    assert after is not None and after["channel"]["chosen"] is None and "channel" in after["failing"]
    [outcome] = await TriggerWorker(rt).run_once(due)
    assert outcome.state == "cancelled"
    [again] = [x for x in await sends(rt, trigger.id) if x.id != send.id]
    assert again.state == "cancelled" and again.reason is not None and "no channel" in again.reason, again.reason
    assert len([r for r in sink.received if r.rcpt_tos == ["olga@example.org"]]) == 1  # nothing more was mailed
