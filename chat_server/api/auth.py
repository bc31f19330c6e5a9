"""Logging in and out."""

from __future__ import annotations

from ..actions.operators import do_login, do_logout
from ..actions.presence import do_arrive_after_login
from ..views import operator_view
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint


async def login(c: Call[sc.LoginBody, None]) -> sc.LoginResult:
    token, operator = await do_login(c.rt, c.body.email, c.body.password,
                                     c.request.client.host if c.request.client else "unknown")
    operator = await do_arrive_after_login(c.rt, operator)
    return sc.LoginResult(token=token, operator=operator_view(operator))


async def logout(c: Call[None, None]) -> dict[str, bool]:
    assert c.token is not None
    await do_logout(c.rt, c.token)
    return {"ok": True}


routes: list[Operation] = [
    endpoint("POST", "/auth/login", login, summary="Log in; returns a bearer token", body=sc.LoginBody,
             response=sc.LoginResult, auth=Auth.public),
    endpoint("POST", "/auth/logout", logout, summary="End this token's session"),
]
