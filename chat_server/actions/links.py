""""Continue in Telegram / VK" link tokens and email reply+ tokens.

A link token names the visitor's contact, is signed, expires within minutes and works once
(its nonce is recorded when spent). It fits Telegram's 64-character `start` parameter and its
alphabet ([A-Za-z0-9_-]). A reply token names a conversation and never expires: it sits in the
Reply-To address of every email we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time

from sqlalchemy.exc import IntegrityError

from ..models import UsedLinkToken
from ..runtime import Runtime

LINK_TTL_SECONDS = 15 * 60
_LINK = struct.Struct(">QI6s")  # contact id, expiry (unix seconds), nonce
_MAC_BYTES = 12


def _mac(secret: str, purpose: bytes, payload: bytes, size: int) -> bytes:
    return hmac.new(secret.encode(), purpose + payload, hashlib.sha256).digest()[:size]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None


def issue_link_token(secret: str, contact_id: int, now: float | None = None) -> str:
    expires = int((now or time.time()) + LINK_TTL_SECONDS)
    payload = _LINK.pack(contact_id, expires, secrets.token_bytes(6))
    return _b64(payload + _mac(secret, b"link", payload, _MAC_BYTES))


def read_link_token(secret: str, token: str, now: float | None = None) -> tuple[int, str] | None:
    """(contact id, nonce) of a genuine, unexpired token; None otherwise."""
    raw = _unb64(token) if len(token) <= 64 else None
    if raw is None or len(raw) != _LINK.size + _MAC_BYTES:
        return None
    payload, mac = raw[: _LINK.size], raw[_LINK.size :]
    if not hmac.compare_digest(mac, _mac(secret, b"link", payload, _MAC_BYTES)):
        return None
    contact_id, expires, nonce = _LINK.unpack(payload)
    if expires < (now or time.time()):
        return None
    return contact_id, nonce.hex()


async def do_spend_link_token(rt: Runtime, token: str) -> int | None:
    """The contact a genuine, unexpired, unspent token names, spending it; None otherwise."""
    read = read_link_token(rt.settings.effective_secret_key, token)
    if read is None:
        return None
    contact_id, nonce = read
    try:
        async with rt.db.write() as s:
            s.add(UsedLinkToken(nonce=nonce, contact_id=contact_id))
    except IntegrityError:
        return None  # spent before
    return contact_id


def reply_token(secret: str, conversation_id: int) -> str:
    """`c<id>x<mac>`: lower-case letters and digits only, since mail systems may fold case."""
    mac = _mac(secret, b"reply", str(conversation_id).encode(), 8).hex()
    return f"c{conversation_id}x{mac}"


def read_reply_token(secret: str, token: str) -> int | None:
    token = token.lower()
    if not token.startswith("c") or "x" not in token:
        return None
    ident, _, _ = token[1:].partition("x")
    if not ident.isdigit() or len(ident) > 18:
        return None
    return int(ident) if hmac.compare_digest(token, reply_token(secret, int(ident))) else None
