"""The one error type actions raise: a code for programs, a sentence for people."""

from __future__ import annotations


class ActionError(Exception):
    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(ActionError):
    status = 404


class Forbidden(ActionError):
    status = 403


class Conflict(ActionError):
    status = 409


class TooMany(ActionError):
    status = 429

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after  # seconds; sent as Retry-After
