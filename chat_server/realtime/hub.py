"""This process's open sockets, indexed by who they belong to, and fan-out to them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from ..bus import AccessChange, Dispatch
from ..metrics import Metrics
from .connection import Backfill, Connection

log = logging.getLogger(__name__)

# Close code for a socket whose session or token was revoked: the client must log in again
# (operators) or start afresh (visitors); the same code a refused hello gets.
REVOKED = 4401
# How long a revocation is remembered for sockets whose credentials were being checked while it
# travelled (their check may have read the database just before the change committed).
RECENT_SECONDS = 60.0


class Hub:
    def __init__(self, backfill: Backfill, metrics: Metrics) -> None:
        self._backfill = backfill
        self._metrics = metrics
        self.visitors: dict[int, set[Connection]] = defaultdict(set)  # by contact id
        self.operators: dict[int, set[Connection]] = defaultdict(set)  # by operator id
        self.by_role: dict[str, set[Connection]] = defaultdict(set)
        self.all_visitors: set[Connection] = set()
        self._recent: list[tuple[float, AccessChange]] = []  # (received, change), oldest first

    def add(self, conn: Connection) -> None:
        if conn.kind == "visitor":
            assert conn.contact_id is not None
            self.visitors[conn.contact_id].add(conn)
            self.all_visitors.add(conn)
        else:
            assert conn.operator_id is not None and conn.role is not None
            self.operators[conn.operator_id].add(conn)
            self.by_role[conn.role].add(conn)
        self._metrics.open_sockets.labels(conn.kind).inc()
        for received, change in self._recent:
            if received >= conn.checked_at:
                self._apply(change, [conn])

    def remove(self, conn: Connection) -> None:
        if conn.kind == "visitor":
            _discard(self.visitors, conn.contact_id, conn)
            self.all_visitors.discard(conn)
        else:
            _discard(self.operators, conn.operator_id, conn)
            _discard(self.by_role, conn.role, conn)
        self._metrics.open_sockets.labels(conn.kind).dec()

    def dispatch(self, dispatches: Sequence[Dispatch]) -> None:
        """Called by the bus for every delivery committed anywhere."""
        for delivery in dispatches:
            if delivery.access is not None:
                self.change_access(delivery.access)
                continue
            if delivery.rekey is not None:
                self._rekey(*delivery.rekey)
            recipients = self._recipients(delivery)
            for conn in recipients:
                conn.offer(delivery, self._backfill)
            if recipients:
                self._metrics.delivered(len(recipients), delivery.published_at)

    def _recipients(self, delivery: Dispatch) -> set[Connection]:
        audience = delivery.audience
        found: set[Connection] = set()
        if audience.all_visitors:
            found |= self.all_visitors
        for contact_id in audience.contact_ids:
            found |= self.visitors.get(contact_id, set())
        for operator_id in audience.operator_ids:
            found |= self.operators.get(operator_id, set())
        for role in audience.roles:
            found |= self.by_role.get(role, set())
        return found

    def change_access(self, change: AccessChange) -> None:
        """Close (or downgrade) this process's sockets that a revocation or role change concerns."""
        now = time.monotonic()
        while self._recent and self._recent[0][0] < now - RECENT_SECONDS:
            self._recent.pop(0)
        self._recent.append((now, change))
        index = self.visitors if change.kind == "visitor" else self.operators
        self._apply(change, list(index.get(change.subject, ())))

    def _apply(self, change: AccessChange, conns: list[Connection]) -> None:
        for conn in conns:
            if conn.closed:
                continue
            if conn.kind == "visitor":
                if change.kind == "visitor" and change.detail == conn.credential:
                    conn.close(REVOKED)
            elif change.subject != conn.operator_id:
                continue
            elif change.kind == "operator" or (change.kind == "session" and change.detail == conn.credential):
                conn.close(REVOKED)
            elif change.kind == "role" and conn.role != change.detail:
                # Audiences by role are looked up per delivery, so moving the socket is enough;
                # the socket's handler reads the role from here before every frame.
                _discard(self.by_role, conn.role, conn)
                conn.role = change.detail
                self.by_role[conn.role].add(conn)

    def operator_connections(self) -> list[Connection]:
        return [c for group in self.operators.values() for c in group]

    def confirm_sessions(self, live: dict[str, str], read_at: float) -> None:
        """`live` maps the session hashes still valid at `read_at` to their operator's role:
        sockets whose session is not among them close; the others take that role. Sockets
        that joined after the read began are left alone (their session may be newer)."""
        for conn in self.operator_connections():
            if conn.closed or conn.checked_at >= read_at or conn.operator_id is None:
                continue
            role = live.get(conn.credential or "")
            if role is None:
                conn.close(REVOKED)
            elif role != conn.role:
                self._apply(AccessChange("role", conn.operator_id, role), [conn])

    def _rekey(self, old_contact: int, new_contact: int) -> None:
        for conn in self.visitors.pop(old_contact, set()):
            conn.contact_id = new_contact
            # Its old thread is gone: what it held is replaced by the survivor's thread.
            conn.cursors.clear()
            conn.epochs.clear()
            self.visitors[new_contact].add(conn)

    def rekey(self, conn: Connection, new_contact: int) -> None:
        """Move one socket now (its own identify merged it) without waiting for the bus."""
        if conn.contact_id == new_contact:
            return
        _discard(self.visitors, conn.contact_id, conn)
        conn.contact_id = new_contact
        conn.cursors.clear()
        conn.epochs.clear()
        self.visitors[new_contact].add(conn)

    def resync(self) -> None:
        """After the bus lost news: every socket checks the database for what it missed."""
        for conns in list(self.visitors.values()) + list(self.operators.values()):
            for conn in conns:
                for conv, cursor in list(conn.cursors.items()):
                    if conv not in conn.filling:
                        conn.start_fill(conv, cursor, [], self._backfill)

    def connections(self) -> list[Connection]:
        return [c for group in (*self.visitors.values(), *self.operators.values()) for c in group]

    async def close_all(self, code: int) -> None:
        for conn in self.connections():
            conn.close(code)
        await asyncio.sleep(0)


def _discard(index: dict[int, set[Connection]] | dict[str, set[Connection]], key: object, conn: Connection) -> None:
    group = index.get(key)  # type: ignore[call-overload]
    if group is not None:
        group.discard(conn)
        if not group:
            del index[key]  # type: ignore[arg-type]
