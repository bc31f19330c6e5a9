"""Saved replies: everyone reads them, admins change them."""

from __future__ import annotations

from ..actions.saved_replies import do_create_saved_reply, do_delete_saved_reply, do_update_saved_reply
from ..models import SavedReply
from ..reads.saved_replies import all_saved_replies
from . import inbox_schemas as isc
from .framework import Auth, Call, Operation, endpoint


def saved_reply_view(r: SavedReply) -> isc.SavedReplyView:
    return isc.SavedReplyView.model_validate(r, from_attributes=True)


async def list_saved_replies(c: Call[None, None]) -> isc.SavedReplyList:
    return isc.SavedReplyList(items=[saved_reply_view(r) for r in await all_saved_replies(c.rt.db)])


async def create_saved_reply(c: Call[isc.SavedReplyBody, None]) -> isc.SavedReplyView:
    return saved_reply_view(await do_create_saved_reply(c.rt, c.me, c.body.shortcut, c.body.text))


async def update_saved_reply(c: Call[isc.SavedReplyUpdateBody, None]) -> isc.SavedReplyView:
    b = c.body
    return saved_reply_view(await do_update_saved_reply(c.rt, c.me, c.path_int("id"), b.shortcut, b.text))


async def delete_saved_reply(c: Call[None, None]) -> dict[str, bool]:
    await do_delete_saved_reply(c.rt, c.me, c.path_int("id"))
    return {"ok": True}


routes: list[Operation] = [
    endpoint("GET", "/saved-replies", list_saved_replies, summary="Saved replies, by shortcut",
             response=isc.SavedReplyList),
    endpoint("POST", "/saved-replies", create_saved_reply, summary="Add a saved reply (admins)",
             body=isc.SavedReplyBody, response=isc.SavedReplyView, auth=Auth.admin, status=201),
    endpoint("PATCH", "/saved-replies/{id:int}", update_saved_reply, summary="Change a saved reply (admins)",
             body=isc.SavedReplyUpdateBody, response=isc.SavedReplyView, auth=Auth.admin),
    endpoint("DELETE", "/saved-replies/{id:int}", delete_saved_reply, summary="Delete a saved reply (admins)",
             auth=Auth.admin),
]
