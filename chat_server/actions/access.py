"""News that changes who may keep a socket open: sent after the change committed, to every
process, whose hubs close or downgrade the sockets concerned (see realtime/hub.py)."""

from __future__ import annotations

from ..bus import AccessChange, Audience, Dispatch, DispatchKind


def session_ended(operator_id: int, session_hash: str) -> Dispatch:
    return _dispatch(AccessChange("session", operator_id, session_hash), Audience(operator_ids=(operator_id,)))


def operator_locked_out(operator_id: int) -> Dispatch:
    return _dispatch(AccessChange("operator", operator_id), Audience(operator_ids=(operator_id,)))


def role_changed(operator_id: int, role: str) -> Dispatch:
    return _dispatch(AccessChange("role", operator_id, role), Audience(operator_ids=(operator_id,)))


def visitor_token_revoked(contact_id: int, visitor_id: str) -> Dispatch:
    return _dispatch(AccessChange("visitor", contact_id, visitor_id), Audience(contact_ids=(contact_id,)))


def _dispatch(change: AccessChange, audience: Audience) -> Dispatch:
    # Registered on the write's unit of work like every other dispatch: a socket closed for a
    # change that then rolled back would be wrong, and one left open after it committed is what
    # this exists to prevent.
    return Dispatch(DispatchKind.access, audience, "", access=change)
