"""The logged-in operator and the team."""

from __future__ import annotations

from ..actions.operators import do_create_operator, do_set_availability, do_set_language, do_update_operator
from ..actions.presence import do_set_availability_on_login
from ..frames import OperatorView
from ..models import Availability, Operator, Role
from ..reads import operators as reads
from ..views import operator_view
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint


def me_view(operator: Operator) -> sc.MeView:
    return sc.MeView(**operator_view(operator).model_dump(), language=operator.language,
                     availability_on_login=str(operator.availability_on_login))


async def me(c: Call[None, None]) -> sc.MeView:
    return me_view(c.me)


async def update_me(c: Call[sc.MeBody, None]) -> sc.MeView:
    if "language" in c.body.model_fields_set:
        await do_set_language(c.rt, c.me, c.body.language)
    if "availability_on_login" in c.body.model_fields_set:
        await do_set_availability_on_login(c.rt, c.me, c.body.availability_on_login)
    return me_view(c.me)


async def availability(c: Call[sc.AvailabilityBody, None]) -> OperatorView:
    return operator_view(await do_set_availability(c.rt, c.me, Availability(c.body.availability)))


async def list_operators(c: Call[None, None]) -> sc.OperatorList:
    return sc.OperatorList(items=[operator_view(o) for o in await reads.team(c.rt.db)])


async def create_operator(c: Call[sc.OperatorCreateBody, None]) -> OperatorView:
    b = c.body
    return operator_view(await do_create_operator(c.rt, b.name, b.email, b.password, Role(b.role),
                                                  availability_on_login=b.availability_on_login))


async def update_operator(c: Call[sc.OperatorUpdateBody, None]) -> OperatorView:
    b = c.body
    operator = await do_update_operator(c.rt, c.me, c.path_int("id"), name=b.name,
                                        role=Role(b.role) if b.role else None, is_active=b.is_active,
                                        password=b.password)
    return operator_view(operator)


routes: list[Operation] = [
    endpoint("GET", "/me", me, summary="The logged-in operator and their own settings", response=sc.MeView),
    endpoint("PATCH", "/me", update_me, summary="Change your own settings (inbox language, availability on login)", body=sc.MeBody,
             response=sc.MeView),
    endpoint("POST", "/me/availability", availability, summary="Go online or away", body=sc.AvailabilityBody),
    endpoint("GET", "/operators", list_operators, summary="The team", response=sc.OperatorList),
    endpoint("POST", "/operators", create_operator, summary="Invite an operator (admins)", body=sc.OperatorCreateBody,
             auth=Auth.admin, status=201),
    endpoint("PATCH", "/operators/{id:int}", update_operator,
             summary="Change role, name, password or deactivate (admins)", body=sc.OperatorUpdateBody, auth=Auth.admin),
]
