"""Admins manage the scoring rules and the grading (a change recomputes every score in the
background); the source's table installs as editable rules."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from ..behaviour.scoring import PRESET, GradingConfig, RuleDefinition
from ..models import Grading, Operator, Role, ScoreEntry, ScoringRule
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, Forbidden, NotFound
from .membership import run
from .score_recompute import start_recompute
from .scoring import ENTRY, RULE
from .validation import check_storable

MAX_RULES = 500


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
