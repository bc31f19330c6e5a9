"""The widget ends its visitor's session: `shutdown()` (the site's user logged out)."""

from __future__ import annotations

from ..actions.visitor_tokens import do_revoke_visitor_token
from ..tokens import visitor_tokens
from .framework import Auth, Call, Operation, credential, endpoint


async def revoke(c: Call[None, None]) -> dict[str, bool]:
    token = credential(c.request, "visitor")
    claim = visitor_tokens(c.rt.settings).claim(token) if token else None
    assert claim is not None  # the framework let only a valid token through
    await do_revoke_visitor_token(c.rt, claim)
    return {"ok": True}


routes: list[Operation] = [
    endpoint("POST", "/widget/token/revoke", revoke, summary="Revoke this visitor token (the widget's shutdown)",
             auth=Auth.visitor),
]
