"""Which contact a visitor token speaks for, and revoking tokens (the widget's `shutdown()`)."""

from __future__ import annotations

from sqlmodel import col, select, update

from ..models import ContactIdentity, IdentityKind
from ..runtime import Runtime
from ..tokens import VisitorClaim
from .access import visitor_token_revoked


async def token_contact(rt: Runtime, claim: VisitorClaim) -> int | None:
    """The contact of a genuine, unexpired token whose identity has not been revoked since."""
    async with rt.db.read() as s:
        row = (await s.exec(
            select(ContactIdentity.contact_id, ContactIdentity.token_version)
            .where(ContactIdentity.kind == IdentityKind.visitor, ContactIdentity.value == claim.visitor_id)
        )).first()
    if row is None or row[1] != claim.version:
        return None
    return row[0]


async def do_revoke_visitor_token(rt: Runtime, claim: VisitorClaim) -> bool:
    """Every token of this visitor identity stops working, on REST and on open sockets.
    Revoking a token that is already revoked changes nothing."""
    async with rt.db.write() as s:
        identity = (await s.exec(
            select(ContactIdentity).where(ContactIdentity.kind == IdentityKind.visitor,
                                          ContactIdentity.value == claim.visitor_id)
        )).first()
        if identity is None or identity.token_version != claim.version:
            return False
        await s.exec(update(ContactIdentity).where(col(ContactIdentity.id) == identity.id)
                     .values(token_version=identity.token_version + 1))
        s.publish([visitor_token_revoked(identity.contact_id, claim.visitor_id)])
    return True
