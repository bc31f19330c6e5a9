"""Whens that come true with time alone, checked by the sweep at instants the test chooses:
inactivity and a date property's anniversary fire once per occurrence, however often the
sweep runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat_server.actions.tracking import TrackItem, do_track
from chat_server.actions.trigger_sweep import date_matches, do_sweep_triggers
from chat_server.models import Contact
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from chat_server.triggers.definition import DatePropertyWhen
from chat_server.triggers.worker import TriggerWorker
from tests.inprocess import RecordingBus
from tests.trigger_helpers import automatic_messages, contact, make_trigger, sends

pytestmark = pytest.mark.anyio


async def test_inactivity_fires_once_per_lapse(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime, delay_seconds=0, audience={}, limits={"frequency": "every_time"},
                                 when={"type": "inactivity", "event": "session_started", "days": 14})
    now = utcnow()
    idle, active = await contact(runtime, "v-idle"), await contact(runtime, "v-active")
    await do_track(runtime, [TrackItem(idle, "session_started", occurred_at=now - timedelta(days=20))])
    await do_track(runtime, [TrackItem(active, "session_started", occurred_at=now - timedelta(days=20)),
                             TrackItem(active, "session_started", occurred_at=now - timedelta(days=1))])
    assert await do_sweep_triggers(runtime, now - timedelta(days=10)) == 0  # not yet 14 days then
    later = now + timedelta(minutes=1)
    assert await do_sweep_triggers(runtime, later) == 1
    assert await do_sweep_triggers(runtime, later + timedelta(minutes=1)) == 0  # the same lapse
    [send] = await sends(runtime, trigger.id)
    assert send.contact_id == idle
    [outcome] = await TriggerWorker(runtime).run_once(later + timedelta(minutes=2))
    assert outcome.state == "sent", outcome
    assert len(await automatic_messages(runtime)) == 1


async def test_a_birthday_fires_on_its_day_each_year(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime, delay_seconds=0, audience={}, limits={"frequency": "every_time"},
                                 when={"type": "date_property", "property": "birthday", "annual": True})
    now = utcnow()
    who = await contact(runtime, "v-birthday")
    async with runtime.db.write() as s:
        row = await s.get(Contact, who)
        assert row is not None
        row.properties = {**row.properties, "birthday": now.replace(year=1990).date().isoformat()}
        s.add(row)
    await contact(runtime, "v-no-birthday")
    assert await do_sweep_triggers(runtime, now) == 1
    assert await do_sweep_triggers(runtime, now + timedelta(minutes=5)) == 0
    assert await do_sweep_triggers(runtime, now + timedelta(days=1)) == 0
    [send] = await sends(runtime, trigger.id)
    assert send.contact_id == who


async def test_every_lapsed_contact_is_reached_however_many_are_refused_first(
    rt: tuple[Runtime, RecordingBus], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The audience refuses contacts with an email, and they come first; with a batch of two, a
    # sweep that read only its first batch would never reach anyone after them.
    monkeypatch.setattr("chat_server.actions.trigger_sweep.BATCH", 2)
    runtime, _ = rt
    trigger = await make_trigger(runtime, delay_seconds=0, limits={"frequency": "every_time"},
                                 when={"type": "inactivity", "event": "session_started", "days": 14})
    now = utcnow()
    refused = [await contact(runtime, f"v-known-{n}", email=f"known{n}@example.com") for n in range(2)]
    lapsed = [await contact(runtime, f"v-lapsed-{n}") for n in range(3)]
    await do_track(runtime, [TrackItem(c, "session_started", occurred_at=now - timedelta(days=20))
                             for c in refused + lapsed])
    assert await do_sweep_triggers(runtime, now) == 3
    assert sorted(s.contact_id for s in await sends(runtime, trigger.id)) == lapsed
    assert await do_sweep_triggers(runtime, now + timedelta(minutes=1)) == 0


async def test_a_date_n_days_ahead_fires_on_its_day_and_other_values_are_ignored(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime, delay_seconds=0, audience={}, limits={"frequency": "every_time"},
                                 when={"type": "date_property", "property": "renewal", "offset_days": -3})
    now = utcnow()
    values = {"due": (now + timedelta(days=3)).date().isoformat() + "T09:00:00Z",
              "later": (now + timedelta(days=4)).date().isoformat(),
              "number": 20261204, "text": "next week", "list": ["2026-12-04"]}
    who = {}
    for key, value in values.items():
        who[key] = await contact(runtime, f"v-renewal-{key}")
        async with runtime.db.write() as s:
            row = await s.get(Contact, who[key])
            assert row is not None
            row.properties = {**row.properties, "renewal": value}
            s.add(row)
    assert await do_sweep_triggers(runtime, now) == 1
    assert [s.contact_id for s in await sends(runtime, trigger.id)] == [who["due"]]


def test_date_offsets_and_leap_days() -> None:
    before = DatePropertyWhen(property="renewal", offset_days=-3)
    today = utcnow().date()
    assert date_matches(before, (today + timedelta(days=3)).isoformat(), today)
    assert not date_matches(before, today.isoformat(), today)
    leap = DatePropertyWhen(property="birthday", annual=True)
    from datetime import date
    assert date_matches(leap, "2000-02-29", date(2025, 2, 28))
    assert not date_matches(leap, "2000-02-29", date(2024, 2, 28))
    assert not date_matches(leap, "not a date", today)
