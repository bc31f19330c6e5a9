"""REST for lead scoring: the rules (admins edit, everyone reads), the grade grid, the
background recomputation's progress, and a contact's score with its breakdown and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ..actions.contacts import get_contact
from ..actions.scoring import scoring_state
from ..actions.scoring_rules import (
    do_create_rule,
    do_delete_rule,
    do_install_scoring_preset,
    do_set_grading,
    do_update_rule,
)
from ..behaviour.filters import Storable
from ..behaviour.scoring import GradingConfig, RuleDefinition
from ..models import ScoringRule
from ..reads import scoring as reads
from ..reads.segments import contact_segments
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint
from .segments import ContactSegmentView

Name = Annotated[str, Field(min_length=1, max_length=200), Storable]


class RuleBody(sc.Body):
    name: Name
    definition: RuleDefinition


class RuleUpdateBody(sc.Body):
    name: Name | None = None
    definition: RuleDefinition | None = None


class RuleView(BaseModel):
    id: int
    name: str
    definition: RuleDefinition
    preset: str | None
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleView]


class GradingBody(sc.Body):
    enabled: bool
    config: GradingConfig = Field(default_factory=GradingConfig)


class RecomputeView(BaseModel):
    running: bool
    done: int
    total: int
    finished_at: datetime | None


class RulePointsView(BaseModel):
    rule_id: int
    name: str
    points: int
    times: int


class ScoreEntryView(BaseModel):
    rule_id: int
    points: int
    reason: str
    at: datetime
    expires_at: datetime | None


class ContactBehaviour(BaseModel):
    score: int
    grade: str | None
    breakdown: list[RulePointsView]
    history: list[ScoreEntryView]
    segments: list[ContactSegmentView]


def rule_view(rule: ScoringRule) -> RuleView:
    assert rule.id is not None
    return RuleView(id=rule.id, name=rule.name, definition=RuleDefinition.model_validate(rule.definition),
                    preset=rule.preset, updated_at=rule.updated_at)

async def list_rules(c: Call[None, None]) -> RuleList:
    async with c.rt.db.read() as s:
        return RuleList(items=[rule_view(r) for r in await reads.list_rules(s)])

async def create_rule(c: Call[RuleBody, None]) -> RuleView:
    return rule_view(await do_create_rule(c.rt, c.me, c.body.name, c.body.definition))

async def install_preset(c: Call[None, None]) -> RuleList:
    return RuleList(items=[rule_view(r) for r in await do_install_scoring_preset(c.rt, c.me)])

async def update_rule(c: Call[RuleUpdateBody, None]) -> RuleView:
    return rule_view(await do_update_rule(c.rt, c.me, c.path_int("id"), c.body.name, c.body.definition))

async def delete_rule(c: Call[None, None]) -> dict[str, bool]:
    await do_delete_rule(c.rt, c.me, c.path_int("id"))
    return {"ok": True}

async def get_grading(c: Call[None, None]) -> GradingBody:
    async with c.rt.db.read() as s:
        row = await reads.grading(s)
    if row is None:
        return GradingBody(enabled=False)
    return GradingBody(enabled=row.enabled, config=GradingConfig.model_validate(row.config))

async def set_grading(c: Call[GradingBody, None]) -> GradingBody:
    await do_set_grading(c.rt, c.me, c.body.enabled, c.body.config)
    return GradingBody(enabled=c.body.enabled, config=c.body.config)

async def recompute_progress(c: Call[None, None]) -> RecomputeView:
    st = scoring_state(c.rt)
    return RecomputeView(running=st.running, done=st.done, total=st.total, finished_at=st.finished_at)

async def contact_behaviour(c: Call[None, None]) -> ContactBehaviour:
    async with c.rt.db.read() as s:
        contact = await get_contact(s, c.path_int("id"))
        if contact.merged_into_id is not None:
            contact = await get_contact(s, contact.merged_into_id)
        assert contact.id is not None
        parts = await reads.breakdown(s, contact.id)
        entries = await reads.history(s, contact.id)
        segments = await contact_segments(s, contact.id)
    return ContactBehaviour(
        score=contact.score, grade=contact.grade,
        breakdown=[RulePointsView(rule_id=p.rule_id, name=p.name, points=p.points, times=p.times) for p in parts],
        history=[ScoreEntryView.model_validate(e, from_attributes=True) for e in entries],
        segments=[ContactSegmentView(id=i, name=n, entered_at=at) for i, n, at in segments],
    )


routes: list[Operation] = [
    endpoint("GET", "/scoring/rules", list_rules, summary="Scoring rules", response=RuleList),
    endpoint("POST", "/scoring/rules", create_rule, summary="Add a scoring rule (admins); every score is recomputed",
             body=RuleBody, response=RuleView, auth=Auth.admin, status=201),
    endpoint("POST", "/scoring/preset", install_preset, summary="Add the source's rules table (admins)",
             response=RuleList, auth=Auth.admin, status=201),
    endpoint("PATCH", "/scoring/rules/{id:int}", update_rule,
             summary="Change a scoring rule (admins); every score is recomputed",
             body=RuleUpdateBody, response=RuleView, auth=Auth.admin),
    endpoint("DELETE", "/scoring/rules/{id:int}", delete_rule, summary="Remove a scoring rule (admins)",
             auth=Auth.admin),
    endpoint("GET", "/scoring/grading", get_grading, summary="The A1…E4 grade grid", response=GradingBody),
    endpoint("PUT", "/scoring/grading", set_grading, summary="Turn the grade on or off and set its grid (admins)",
             body=GradingBody, response=GradingBody, auth=Auth.admin),
    endpoint("GET", "/scoring/recompute", recompute_progress,
             summary="How far recomputing the scores got (this process)",
             response=RecomputeView),
    endpoint("GET", "/contacts/{id:int}/behaviour", contact_behaviour,
             summary="Score with its breakdown and history, grade, segments",
             response=ContactBehaviour),
]
