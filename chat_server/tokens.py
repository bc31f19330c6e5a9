"""Signed visitor tokens: the widget keeps one and proves with it who it is on reconnect."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer


class VisitorTokens:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="visitor")

    def issue(self, visitor_id: str) -> str:
        return self._serializer.dumps(visitor_id)

    def read(self, token: str | None) -> str | None:
        """The visitor id in a genuine token; None for a missing, forged or damaged one."""
        if not token:
            return None
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None
