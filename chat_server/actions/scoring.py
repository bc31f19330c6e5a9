"""Lead scoring: rules give points as events arrive and as the card changes, inside the same
transaction as the change; the score and the grade then feed the live segment check.

Each award is a `score_entry` (the history; summed per rule, the breakdown). A card rule that
stops holding writes the opposite entry. Decayed points stay in the history and stop
counting at their `expires_at`; the sweep settles scores whose points expired.

Editing a rule or the grading recomputes every score in the background, a few hundred
contacts per transaction, so ingestion goes on between them; the progress is kept here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.scoring import (
    PRESET,
    CardTrigger,
    EventTrigger,
    GradingConfig,
    RuleDefinition,
    card_holds,
    card_reads,
    event_matches,
    grade_of,
)
from ..models import Contact, Event, Grading, Operator, Role, ScoreEntry, ScoringRule, SegmentMembership
from ..models.types import utcnow
from ..runtime import Runtime
from . import trigger_sends
from .errors import ActionError, Forbidden, NotFound
from .membership import Touch, evaluate_contacts, run, segment_cache, snapshots
from .validation import check_storable

log = logging.getLogger(__name__)
CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
ENTRY = ScoreEntry.__table__.c  # type: ignore[attr-defined]
RULE = ScoringRule.__table__.c  # type: ignore[attr-defined]
GRADING = Grading.__table__.c  # type: ignore[attr-defined]
MAX_RULES = 500
RECOMPUTE_CHUNK = 300


@dataclass
class Happened:
    """An event just stored, as the rules see it."""

    contact_id: int
    event_id: int
    name: str
    url: str | None
    properties: dict[str, Any]
    occurred_at: datetime


class RuleIndex:
    def __init__(self, rows: Iterable[tuple[int, str, dict[str, Any]]], grading: GradingConfig | None) -> None:
        self.rules: dict[int, RuleDefinition] = {}
        self.names: dict[int, str] = {}
        for rule_id, name, definition in rows:
            self.rules[rule_id] = RuleDefinition.model_validate(definition)
            self.names[rule_id] = name
        self.by_event: dict[str, list[int]] = {}
        self.card_rules: dict[int, tuple[set[str], set[str]]] = {}
        for rule_id, rule in sorted(self.rules.items()):
            if isinstance(rule.when, EventTrigger):
                self.by_event.setdefault(rule.when.name, []).append(rule_id)
            else:
                self.card_rules[rule_id] = card_reads(rule)
        self.grading = grading
        self.fit_reads = card_reads(grading) if grading else (set(), set())

    def card_rules_for(self, touch: Touch) -> list[int]:
        return [rid for rid, (keys, fields) in self.card_rules.items()
                if keys & touch.properties or fields & touch.fields]

    def fit_touched(self, touch: Touch) -> bool:
        keys, fields = self.fit_reads
        return bool(keys & touch.properties or fields & touch.fields)


@dataclass
class ScoringState:
    stamp: tuple[Any, ...] | None = None
    index: RuleIndex = field(default_factory=lambda: RuleIndex([], None))
    # The background recomputation: how far it got, and whether another is wanted after it.
    total: int = 0
    done: int = 0
    running: bool = False
    again: bool = False
    finished_at: datetime | None = None
    task: asyncio.Task[None] | None = None

    async def get(self, s: AsyncSession) -> RuleIndex:
        stamp = tuple((await run(s, select(
            select(func.count(RULE.id)).scalar_subquery(), select(func.max(RULE.updated_at)).scalar_subquery(),
            select(func.max(RULE.id)).scalar_subquery(), select(func.max(GRADING.updated_at)).scalar_subquery(),
        ))).one())
        if stamp != self.stamp:
            rows = (await run(s, select(RULE.id, RULE.name, RULE.definition))).all()
            graded = (await run(s, select(GRADING.enabled, GRADING.config).order_by(GRADING.id).limit(1))).first()
            grading = GradingConfig.model_validate(graded[1]) if graded and graded[0] else None
            self.index = RuleIndex(((r[0], r[1], r[2]) for r in rows), grading)
            self.stamp = stamp
        return self.index


def scoring_state(rt: Runtime) -> ScoringState:
    if rt.scoring is None:
        rt.scoring = ScoringState()
    return rt.scoring


# --- reacting to a change -------------------------------------------------------------------

async def react(s: AsyncSession, rt: Runtime, touches: dict[int, Touch], now: datetime,
                happened: list[Happened] | None = None) -> None:
    """Score what happened, then re-check segments: one pass over the touched contacts, in the
    caller's transaction."""
    index = await scoring_state(rt).get(s)
    entries = _event_entries(index, happened or [])
    if entries and any(index.rules[e["rule_id"]].limit != "always" for e in entries):
        entries = await _within_limits(s, index, entries)
    card_contacts = {cid: rules for cid, t in touches.items() if (rules := index.card_rules_for(t))}
    if card_contacts:
        entries += await _card_entries(s, index, card_contacts, now)
    if entries:
        await run(s, insert(ScoreEntry.__table__), entries)  # type: ignore[attr-defined]
    rescore = {e["contact_id"] for e in entries}
    if index.grading is not None:
        rescore |= {cid for cid, t in touches.items() if index.fit_touched(t)}
    if rescore:
        for cid, changed in (await settle_scores(s, index, sorted(rescore), now)).items():
            touches.setdefault(cid, Touch()).fields |= changed
    changes = await evaluate_contacts(s, rt, dict(touches), now)
    # Triggers fired by these events and changes are scheduled in this same transaction.
    await trigger_sends.react(s, rt, touches, happened or [], changes, now)


def _event_entries(index: RuleIndex, happened: list[Happened]) -> list[dict[str, Any]]:
    entries = []
    for ev in happened:
        for rule_id in index.by_event.get(ev.name, ()):
            rule = index.rules[rule_id]
            assert isinstance(rule.when, EventTrigger)
            if event_matches(rule.when, ev.name, ev.url, ev.properties, ev.occurred_at):
                entries.append(_entry(ev.contact_id, rule_id, rule, index.names[rule_id], ev.occurred_at, ev.event_id))
    return entries


def _entry(contact_id: int, rule_id: int, rule: RuleDefinition, name: str, at: datetime, event_id: int | None,
           points: int | None = None) -> dict[str, Any]:
    return {"contact_id": contact_id, "rule_id": rule_id, "points": rule.points if points is None else points,
            "event_id": event_id, "reason": name[:300], "at": at,
            "expires_at": at + timedelta(days=rule.expires_days) if rule.expires_days else None}


async def _given(s: AsyncSession, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int]]:
    """(contact, rule) → (entries so far, their points summed)."""
    if not pairs:
        return {}
    contacts = sorted({c for c, _ in pairs})
    rules = sorted({r for _, r in pairs})
    rows = (await run(s, select(ENTRY.contact_id, ENTRY.rule_id, func.count(), func.sum(ENTRY.points)).where(
        ENTRY.contact_id.in_(contacts), ENTRY.rule_id.in_(rules)).group_by(ENTRY.contact_id, ENTRY.rule_id))).all()
    return {(r[0], r[1]): (r[2], r[3] or 0) for r in rows}


async def _within_limits(s: AsyncSession, index: RuleIndex, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    limited = {(e["contact_id"], e["rule_id"]) for e in entries if index.rules[e["rule_id"]].limit != "always"}
    counts = {k: n for k, (n, _) in (await _given(s, limited)).items()}
    kept = []
    for e in entries:
        key = (e["contact_id"], e["rule_id"])
        if index.rules[e["rule_id"]].allowed(counts.get(key, 0)):
            kept.append(e)
            counts[key] = counts.get(key, 0) + 1
    return kept


async def _card_entries(s: AsyncSession, index: RuleIndex, card_contacts: dict[int, list[int]], now: datetime,
                        ) -> list[dict[str, Any]]:
    snaps = await snapshots(s, sorted(card_contacts), set())
    given = await _given(s, {(c, r) for c, rules in card_contacts.items() for r in rules})
    entries = []
    for cid, rule_ids in card_contacts.items():
        snap = snaps.get(cid)
        if snap is None:
            continue
        for rule_id in rule_ids:
            rule = index.rules[rule_id]
            assert isinstance(rule.when, CardTrigger)
            times, total = given.get((cid, rule_id), (0, 0))
            holds, active = card_holds(rule.when, snap, now), total != 0
            if holds and not active and rule.allowed(times if rule.limit == "once" else 0):
                entries.append(_entry(cid, rule_id, rule, index.names[rule_id], now, None))
            elif not holds and active and rule.limit != "once":
                entries.append(_entry(cid, rule_id, rule, index.names[rule_id] + " (no longer)", now, None, -total))
    return entries


_UPDATE_SCORE = update(Contact.__table__).where(CONTACT.id == bindparam("b_id")).values(  # type: ignore[attr-defined]
    score=bindparam("b_score", type_=CONTACT.score.type), grade=bindparam("b_grade", type_=CONTACT.grade.type))


async def settle_scores(s: AsyncSession, index: RuleIndex, contact_ids: list[int], now: datetime) -> dict[int, set[str]]:
    """Score = the unexpired points; grade from it and the card. Returns what changed."""
    sums = dict((await run(s, select(ENTRY.contact_id, func.sum(ENTRY.points)).where(
        ENTRY.contact_id.in_(contact_ids), or_(ENTRY.expires_at.is_(None), ENTRY.expires_at > now),
    ).group_by(ENTRY.contact_id))).all())
    if index.grading is not None:
        snaps = await snapshots(s, contact_ids, set())
        current = {cid: (snap.score, snap.grade) for cid, snap in snaps.items()}
    else:  # without grading only the stored score and grade are needed
        current = {r[0]: (r[1], r[2]) for r in (await run(s, select(CONTACT.id, CONTACT.score, CONTACT.grade).where(
            CONTACT.id.in_(contact_ids), CONTACT.merged_into_id.is_(None)))).all()}
    changed: dict[int, set[str]] = {}
    rows = []
    for cid in contact_ids:
        if cid not in current:
            continue
        score = int(sums.get(cid) or 0)
        grade = grade_of(index.grading, snaps[cid], score, now) if index.grading is not None else None
        what = ({"score"} if score != current[cid][0] else set()) | ({"grade"} if grade != current[cid][1] else set())
        if what:
            changed[cid] = what
            rows.append({"b_id": cid, "b_score": score, "b_grade": grade})
    if rows:
        await run(s, _UPDATE_SCORE, rows)
    return changed


async def fold_merge(s: AsyncSession, rt: Runtime, survivor_id: int, merged_id: int) -> None:
    """After a merge (inside its transaction): the absorbed card's points move to the
    survivor, its memberships go, and the survivor — now with both cards' events and
    properties — is scored and checked against every segment."""
    await run(s, update(ScoreEntry.__table__).where(ENTRY.contact_id == merged_id)  # type: ignore[attr-defined]
              .values(contact_id=survivor_id))
    now = utcnow()
    index = await scoring_state(rt).get(s)
    await settle_scores(s, index, [survivor_id], now)
    await run(s, delete(SegmentMembership.__table__).where(  # type: ignore[attr-defined]
        SegmentMembership.__table__.c.contact_id == merged_id))  # type: ignore[attr-defined]
    segments = await segment_cache(rt).get(s)
    await evaluate_contacts(s, rt, {survivor_id: set(segments.definitions)}, now)


# --- the sweep: decayed points --------------------------------------------------------------

async def do_settle_expired_points(rt: Runtime, now: datetime | None = None) -> int:
    """Contacts holding points that expired and whose score still counts them get their score
    (and grade, and segments) settled. Returns how many changed."""
    now = now or utcnow()
    async with rt.db.read() as s:
        counted = select(func.coalesce(func.sum(ENTRY.points), 0)).where(
            ENTRY.contact_id == CONTACT.id, or_(ENTRY.expires_at.is_(None), ENTRY.expires_at > now)).scalar_subquery()
        expired = select(ENTRY.id).where(ENTRY.contact_id == CONTACT.id, ENTRY.expires_at <= now).exists()
        stale = [r[0] for r in (await run(s, select(CONTACT.id).where(expired, CONTACT.score != counted))).all()]
    for start in range(0, len(stale), RECOMPUTE_CHUNK):
        chunk = stale[start:start + RECOMPUTE_CHUNK]
        async with rt.db.write() as s:
            await _lock(s, chunk)
            index = await scoring_state(rt).get(s)
            changed = await settle_scores(s, index, chunk, now)
            await evaluate_contacts(s, rt, {cid: Touch(fields=f) for cid, f in changed.items()}, now)
    return len(stale)


async def _lock(s: AsyncSession, contact_ids: list[int]) -> None:
    bind = s.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await run(s, select(CONTACT.id).where(CONTACT.id.in_(contact_ids)).order_by(CONTACT.id).with_for_update())


# --- recomputing every score after a rule changed -------------------------------------------

def start_recompute(rt: Runtime) -> asyncio.Task[None]:
    """Recompute every score in the background; a change made meanwhile runs it once more."""
    state = scoring_state(rt)
    if state.running and state.task is not None:
        state.again = True
        return state.task
    state.running, state.again = True, False
    state.task = asyncio.create_task(_recompute_loop(rt))
    return state.task


async def _recompute_loop(rt: Runtime) -> None:
    state = scoring_state(rt)
    try:
        while True:
            await do_recompute_scores(rt)
            if not state.again:
                break
            state.again = False
    except Exception:
        log.exception("recomputing scores failed")
    finally:
        state.running = False


async def do_recompute_scores(rt: Runtime, now: datetime | None = None) -> None:
    """Every contact's points replayed from their events under the current rules."""
    state = scoring_state(rt)
    async with rt.db.read() as s:
        ids = [r[0] for r in (await run(s, select(CONTACT.id).where(CONTACT.merged_into_id.is_(None))
                                        .order_by(CONTACT.id))).all()]
    state.total, state.done = len(ids), 0
    for start in range(0, len(ids), RECOMPUTE_CHUNK):
        chunk = ids[start:start + RECOMPUTE_CHUNK]
        when = now or utcnow()
        async with rt.db.write() as s:
            await _lock(s, chunk)
            index = await scoring_state(rt).get(s)
            await run(s, delete(ScoreEntry.__table__).where(ENTRY.contact_id.in_(chunk)))  # type: ignore[attr-defined]
            entries: list[dict[str, Any]] = []
            if index.by_event:
                events = (await run(s, select(EVENT.contact_id, EVENT.id, EVENT.name, EVENT.url, EVENT.properties,
                                              EVENT.occurred_at).where(
                    EVENT.contact_id.in_(chunk), EVENT.name.in_(sorted(index.by_event)),
                ).order_by(EVENT.occurred_at, EVENT.id))).all()
                happened = [Happened(r[0], r[1], r[2], r[3], r[4] or {}, r[5]) for r in events]
                counts: dict[tuple[int, int], int] = {}
                for e in _event_entries(index, happened):
                    key = (e["contact_id"], e["rule_id"])
                    if index.rules[e["rule_id"]].allowed(counts.get(key, 0)):
                        entries.append(e)
                        counts[key] = counts.get(key, 0) + 1
            if index.card_rules:
                entries += await _card_entries(s, index, {cid: list(index.card_rules) for cid in chunk}, when)
            if entries:
                await run(s, insert(ScoreEntry.__table__), entries)  # type: ignore[attr-defined]
            changed = await settle_scores(s, index, chunk, when)
            await evaluate_contacts(s, rt, {cid: Touch(fields=f) for cid, f in changed.items()}, when)
        state.done += len(chunk)
        await asyncio.sleep(0)  # let the event writer in between chunks
    state.finished_at = utcnow()


# --- managing the rules ---------------------------------------------------------------------

def check_can_manage(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage scoring")


def check_rule_name(name: str) -> str:
    name = check_storable(name.strip(), "name")
    if not 1 <= len(name) <= 200:
        raise ActionError("invalid_name", "a rule's name is 1 to 200 characters")
    return name


async def do_create_rule(rt: Runtime, actor: Operator, name: str, definition: RuleDefinition,
                         preset: str | None = None, recompute: bool = True) -> ScoringRule:
    check_can_manage(actor)
    rule = ScoringRule(name=check_rule_name(name), definition=definition.model_dump(mode="json"), preset=preset)
    async with rt.db.write() as s:
        count = (await run(s, select(func.count(RULE.id)))).scalar_one()
        if count >= MAX_RULES:
            raise ActionError("too_many_rules", f"at most {MAX_RULES} scoring rules")
        s.add(rule)
    if recompute:
        start_recompute(rt)
    return rule


async def do_install_scoring_preset(rt: Runtime, actor: Operator) -> list[ScoringRule]:
    """The source's table as editable rules (those not installed already)."""
    check_can_manage(actor)
    async with rt.db.read() as s:
        have = {r[0] for r in (await run(s, select(RULE.preset).where(RULE.preset.is_not(None)))).all()}
    added = []
    for n, (name, definition) in enumerate(PRESET):
        key = f"source_{n + 1}"
        if key not in have:
            added.append(await do_create_rule(rt, actor, name, RuleDefinition.model_validate(definition), preset=key,
                                              recompute=False))
    if added:
        start_recompute(rt)
    return added


async def do_update_rule(rt: Runtime, actor: Operator, rule_id: int, name: str | None,
                         definition: RuleDefinition | None) -> ScoringRule:
    check_can_manage(actor)
    new_name = check_rule_name(name) if name is not None else None
    async with rt.db.write() as s:
        rule = await s.get(ScoringRule, rule_id)
        if rule is None:
            raise NotFound("rule_not_found", "no such scoring rule")
        if new_name is not None:
            rule.name = new_name
        if definition is not None:
            rule.definition = definition.model_dump(mode="json")
        rule.updated_at = utcnow()
        s.add(rule)
    if definition is not None:
        start_recompute(rt)
    return rule


async def do_delete_rule(rt: Runtime, actor: Operator, rule_id: int) -> None:
    check_can_manage(actor)
    async with rt.db.write() as s:
        rule = await s.get(ScoringRule, rule_id)
        if rule is None:
            raise NotFound("rule_not_found", "no such scoring rule")
        await run(s, delete(ScoreEntry.__table__).where(ENTRY.rule_id == rule_id))  # type: ignore[attr-defined]
        await s.delete(rule)
    start_recompute(rt)


async def do_set_grading(rt: Runtime, actor: Operator, enabled: bool, config: GradingConfig) -> Grading:
    check_can_manage(actor)
    async with rt.db.write() as s:
        row = await s.get(Grading, 1)
        if row is None:
            row = Grading(id=1)
        row.enabled, row.config, row.updated_at = enabled, config.model_dump(mode="json"), utcnow()
        s.add(row)
    start_recompute(rt)
    return row
