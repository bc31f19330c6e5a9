"""The API's own description, written from the endpoints it is given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .framework import Auth, Call, Endpoint, Operation, endpoint, openapi_document


def describing(operations: Sequence[Operation]) -> Endpoint[None, None]:
    """`GET /openapi.json`: these operations and itself."""

    async def openapi(c: Call[None, None]) -> dict[str, Any]:
        return openapi_document([*operations, this])

    this = endpoint("GET", "/openapi.json", openapi, summary="This document", auth=Auth.public)
    return this
