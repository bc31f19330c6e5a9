"""Lead scoring: rules give points as events arrive and as the card changes, inside the same
transaction as the change; the score and the grade then feed the live segment check.

Each award is a `score_entry` (the history; summed per rule, the breakdown). A card rule that
stops holding writes the opposite entry. Decayed points stay in the history and stop
counting at their `expires_at`; the sweep settles scores whose points expired.

Editing a rule or the grading recomputes every score in the background
(`score_recompute.py`; its progress is kept here, in the process's scoring state); admins
manage the rules in `scoring_rules.py`.
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
    CardTrigger,
    EventTrigger,
    GradingConfig,
    RuleDefinition,
    card_holds,
    card_reads,
    event_matches,
    grade_of,
)
from ..models import Contact, Event, Grading, ScoreEntry, ScoringRule, SegmentMembership
from ..models.types import utcnow
from ..runtime import Runtime
from . import trigger_sends
from .membership import STAMP as SEGMENTS_STAMP
from .membership import Touch, evaluate_contacts, run, segment_cache, snapshots

log = logging.getLogger(__name__)
CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
ENTRY = ScoreEntry.__table__.c  # type: ignore[attr-defined]
RULE = ScoringRule.__table__.c  # type: ignore[attr-defined]
GRADING = Grading.__table__.c  # type: ignore[attr-defined]


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


# What changes when a rule or the grading is added, edited or removed.
STAMP = (select(func.count(RULE.id)).scalar_subquery(), select(func.max(RULE.updated_at)).scalar_subquery(),
         select(func.max(RULE.id)).scalar_subquery(), select(func.max(GRADING.updated_at)).scalar_subquery())


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

    async def get(self, s: AsyncSession, stamp: tuple[Any, ...] | None = None) -> RuleIndex:
        """`stamp`: the values of STAMP, when the caller read them with others."""
        if stamp is None:
            stamp = tuple((await run(s, select(*STAMP))).one())
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
    # Whether the rules or the segments changed, in one round trip.
    stamps = tuple((await run(s, select(*STAMP, *SEGMENTS_STAMP))).one())
    index = await scoring_state(rt).get(s, stamps[:len(STAMP)])
    segments = await segment_cache(rt).get(s, stamps[len(STAMP):])
    entries = event_entries(index, happened or [])
    if entries and any(index.rules[e["rule_id"]].limit != "always" for e in entries):
        entries = await _within_limits(s, index, entries)
    card_contacts = {cid: rules for cid, t in touches.items() if (rules := index.card_rules_for(t))}
    if card_contacts:
        entries += await card_entries(s, index, card_contacts, now)
    if entries:
        await run(s, insert(ScoreEntry.__table__), entries)  # type: ignore[attr-defined]
    rescore = {e["contact_id"] for e in entries}
    if index.grading is not None:
        rescore |= {cid for cid, t in touches.items() if index.fit_touched(t)}
    if rescore:
        for cid, changed in (await settle_scores(s, index, sorted(rescore), now)).items():
            touches.setdefault(cid, Touch()).add(changed)
    changes = await evaluate_contacts(s, rt, dict(touches), now, segments)
    # Triggers fired by these events and changes are scheduled in this same transaction.
    await trigger_sends.react(s, rt, touches, happened or [], changes, now)


def event_entries(index: RuleIndex, happened: list[Happened]) -> list[dict[str, Any]]:
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


async def card_entries(s: AsyncSession, index: RuleIndex, card_contacts: dict[int, list[int]], now: datetime,
                        ) -> list[dict[str, Any]]:
    snaps = await snapshots(s, sorted(card_contacts), set(), with_segments=False)
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


def _counting(now: datetime) -> Any:
    """Points that still count: not expired."""
    return or_(ENTRY.expires_at.is_(None), ENTRY.expires_at > now)


_UPDATE_SCORE = update(Contact.__table__).where(CONTACT.id == bindparam("b_id")).values(  # type: ignore[attr-defined]
    score=bindparam("b_score", type_=CONTACT.score.type), grade=bindparam("b_grade", type_=CONTACT.grade.type))


async def settle_scores(s: AsyncSession, index: RuleIndex, contact_ids: list[int], now: datetime) -> dict[int, Touch]:
    """Score = the unexpired points; grade from it and the card. Returns what changed, with
    the values before and after."""
    if index.grading is not None:
        sums = dict((await run(s, select(ENTRY.contact_id, func.sum(ENTRY.points)).where(
            ENTRY.contact_id.in_(contact_ids), _counting(now)).group_by(ENTRY.contact_id))).all())
        snaps = await snapshots(s, contact_ids, set(), with_segments=False)
        current = {cid: (snap.score, snap.grade) for cid, snap in snaps.items()}
    else:  # without grading the stored score and grade, and the points, in one query
        points = select(func.sum(ENTRY.points)).where(ENTRY.contact_id == CONTACT.id, _counting(now)).scalar_subquery()
        rows_now = (await run(s, select(CONTACT.id, CONTACT.score, CONTACT.grade, points).where(
            CONTACT.id.in_(contact_ids), CONTACT.merged_into_id.is_(None)))).all()
        current = {r[0]: (r[1], r[2]) for r in rows_now}
        sums = {r[0]: r[3] for r in rows_now}
    changed: dict[int, Touch] = {}
    rows = []
    for cid in contact_ids:
        if cid not in current:
            continue
        score = int(sums.get(cid) or 0)
        grade = grade_of(index.grading, snaps[cid], score, now) if index.grading is not None else None
        what = {name: (before, after) for name, before, after in (
            ("score", current[cid][0], score), ("grade", current[cid][1], grade)) if before != after}
        if what:
            changed[cid] = Touch(fields=set(what), values=what)
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
