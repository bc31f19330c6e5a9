"""Operators: accounts, login sessions, availability."""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..bus import Audience, Dispatch, DispatchKind
from ..frames import PresenceFrame
from ..models import Availability, AvailabilityOnLogin, Operator, OperatorSession, Role
from ..models.types import utcnow
from ..reads.operators import token_hash
from ..runtime import Runtime
from .access import operator_locked_out, role_changed, session_ended
from .errors import ActionError, Conflict, Forbidden, NotFound, TooMany
from .publish import STAFF
from .validation import check_storable

_hasher = PasswordHasher()
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
# The languages the inbox has a catalogue for (inbox_ui/i18n/*.json); None follows the browser.
LANGUAGES = ("en", "ru")


async def hash_password(password: str) -> str:
    # argon2 takes ~100 ms of CPU by design; on the event loop it would stall every socket.
    return await asyncio.to_thread(_hasher.hash, password)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs as long as a wrong
    password. Made on first use, not at import: every server start and CLI call would pay it."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_operator_fields(name: str, email: str, password: str | None) -> tuple[str, str]:
    name = check_storable(name.strip(), "name")
    email = check_storable(email.strip().lower(), "email")
    if not name or len(name) > 200:
        raise ActionError("invalid_name", "name must be 1 to 200 characters")
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise ActionError("invalid_email", "that is not an email address")
    if password is not None:
        check_password(password)
    return name, email


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= 1000:
        raise ActionError("weak_password", f"passwords are at least {MIN_PASSWORD} characters")


def check_availability_on_login(value: str) -> AvailabilityOnLogin:
    try:
        return AvailabilityOnLogin(value)
    except ValueError as exc:
        raise ActionError("invalid_availability_on_login", "availability_on_login is 'online' or 'last'") from exc


async def do_create_operator(rt: Runtime, name: str, email: str, password: str, role: Role,
                             availability_on_login: str = AvailabilityOnLogin.online) -> Operator:
    name, email = check_operator_fields(name, email, password)
    operator = Operator(name=name, email=email, role=role, password_hash=await hash_password(password),
                        availability_on_login=check_availability_on_login(availability_on_login))
    try:
        async with rt.db.write() as s:
            s.add(operator)
    except IntegrityError as exc:
        raise Conflict("email_taken", "an operator with this email exists") from exc
    return operator


async def do_ensure_first_admin(rt: Runtime) -> tuple[str, str] | None:
    """On a fresh install: an admin with a random password, returned once to be printed."""
    async with rt.db.read() as s:
        if (await s.exec(select(func.count()).select_from(Operator))).one():
            return None
    email = rt.settings.initial_admin_email
    password = rt.settings.initial_admin_password or secrets.token_urlsafe(12)
    try:
        await do_create_operator(rt, "Admin", email, password, Role.admin)
    except Conflict:
        return None  # another process of this server created it first
    return email, password


async def do_login(rt: Runtime, email: str, password: str, address: str = "unknown") -> tuple[str, Operator]:
    """`address` is the client's; failures are counted per account and address (login_limits.py)."""
    account = email.strip().lower()
    limits = rt.limits()
    blocked = await limits.check(account, address)
    if blocked is not None:
        raise TooMany("too_many_attempts", "too many failed logins; try again later", blocked.retry_after)
    async with rt.db.read() as s:
        operator = (await s.exec(select(Operator).where(Operator.email == account))).first()
    if not await verify_password(operator.password_hash if operator else await asyncio.to_thread(_dummy_hash), password):
        operator = None
    if operator is None or not operator.is_active:
        await limits.failed(account, address)
        raise ActionError("bad_credentials", "wrong email or password")
    await limits.succeeded(account, address)
    token = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        s.add(OperatorSession(
            token_hash=token_hash(token), operator_id=operator.id or 0,
            expires_at=utcnow() + timedelta(days=rt.settings.operator_session_days),
        ))
    return token, operator


async def do_logout(rt: Runtime, token: str) -> None:
    hashed = token_hash(token)
    async with rt.db.write() as s:
        session = await s.get(OperatorSession, hashed)
        await s.exec(delete(OperatorSession).where(col(OperatorSession.token_hash) == hashed))
        if session is not None:
            # The inbox sockets opened with this token close on every process.
            s.publish([session_ended(session.operator_id, hashed)])


async def operators_online(rt: Runtime) -> bool:
    async with rt.db.read() as s:
        return await count_online(s)


async def count_online(s: AsyncSession) -> bool:
    return bool((await s.exec(select(func.count()).select_from(Operator).where(
        Operator.availability == Availability.online, Operator.is_active == True,  # noqa: E712
        col(Operator.role).in_([Role.admin, Role.operator])))).one())


class OnlineOperators:
    """"Is any operator online?" for every widget that connects, without a query each time.

    The answer is read from the database once and kept until presence news passes through
    this process: every change of an operator's availability, role or active flag publishes
    some, and the bus brings it to every process. So the kept answer is never older than a
    presence change takes to travel; when the bus lost news, it is forgotten too. It listens
    to the bus like the hub does (see app.py).
    """

    def __init__(self) -> None:
        self._value: bool | None = None
        self._generation = 0
        self._reading: asyncio.Task[bool] | None = None

    def forget(self) -> None:
        self._generation += 1
        self._value = None
        self._reading = None

    def dispatch(self, dispatches: Sequence[Dispatch]) -> None:
        if any(d.kind is DispatchKind.presence for d in dispatches):
            self.forget()

    def resync(self) -> None:
        self.forget()

    async def get(self, rt: Runtime) -> bool:
        if self._value is not None:
            return self._value
        if self._reading is None:  # one read serves every widget that connects meanwhile
            self._reading = asyncio.create_task(self._read(rt, self._generation))
        return await asyncio.shield(self._reading)

    async def _read(self, rt: Runtime, generation: int) -> bool:
        try:
            value = await operators_online(rt)
        finally:
            if generation == self._generation:
                self._reading = None
        if generation == self._generation:  # a presence change meanwhile makes this answer stale
            self._value = value
        return value


def presence_dispatches(operator: Operator, was_online: bool, now_online: bool) -> list[Dispatch]:
    frame = PresenceFrame(operator_id=operator.id, availability=operator.availability, operators_online=now_online)
    dispatches = [Dispatch(DispatchKind.presence, STAFF, frame.model_dump_json())]
    if was_online != now_online:
        # Widgets only learn whether anyone can answer, not who.
        public = PresenceFrame(operators_online=now_online).model_dump_json()
        dispatches.append(Dispatch(DispatchKind.presence, Audience(all_visitors=True), public))
    return dispatches


async def do_set_availability(rt: Runtime, operator: Operator, availability: Availability) -> Operator:
    async with rt.db.write() as s:
        # Read in the transaction that changes it: on SQLite nothing else writes meanwhile.
        was_online = await count_online(s)
        fresh = await s.get(Operator, operator.id)
        assert fresh is not None
        fresh.availability = availability
        await s.flush()
        s.publish(presence_dispatches(fresh, was_online, await count_online(s)))
    operator.availability = availability
    return operator


async def do_update_operator(
    rt: Runtime, actor: Operator, operator_id: int, *, name: str | None = None, role: Role | None = None,
    is_active: bool | None = None, password: str | None = None,
) -> Operator:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage operators")
    if actor.id == operator_id and (is_active is False or (role is not None and role != Role.admin)):
        raise ActionError("own_account", "admins cannot demote or deactivate themselves")
    new_hash = None
    if password is not None:
        check_password(password)
        new_hash = await hash_password(password)  # before the transaction: it holds the writer
    # Deactivating or re-roling an online operator can change whether anyone can answer.
    may_change_presence = role is not None or is_active is not None
    async with rt.db.write() as s:
        was_online = await count_online(s) if may_change_presence else None
        operator = await s.get(Operator, operator_id)
        if operator is None:
            raise NotFound("operator_not_found", "no such operator")
        old_role = operator.role
        if name is not None:
            operator.name, _ = check_operator_fields(name, operator.email, None)
        if role is not None:
            operator.role = role
        if new_hash is not None:
            operator.password_hash = new_hash
        if is_active is not None:
            operator.is_active = is_active
        if is_active is False or password is not None:
            # Lock them out now, not when their token expires.
            await s.exec(delete(OperatorSession).where(col(OperatorSession.operator_id) == operator_id))
        s.add(operator)
        access = []
        if is_active is False or password is not None:
            access.append(operator_locked_out(operator_id))
        elif role is not None and role != old_role:
            access.append(role_changed(operator_id, role.value))
        s.publish(access)
        if was_online is not None and operator.availability == Availability.online:
            await s.flush()
            now_online = await count_online(s)
            if now_online != was_online:
                s.publish(presence_dispatches(operator, was_online, now_online))
    return operator


def check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise ActionError("invalid_language", "language is 'en', 'ru' or null (follow the browser)")
    return language


async def do_set_language(rt: Runtime, operator: Operator, language: str | None) -> Operator:
    """An operator's own choice of inbox language."""
    return await do_set_own_setting(rt, operator, "language", check_language(language))


async def do_set_own_setting(rt: Runtime, operator: Operator, name: str, value: object) -> Operator:
    """One of an operator's own settings (checked by the caller): it is theirs alone, so
    nobody is told."""
    async with rt.db.write() as s:
        fresh = await s.get(Operator, operator.id)
        assert fresh is not None
        setattr(fresh, name, value)
    setattr(operator, name, value)
    return operator
