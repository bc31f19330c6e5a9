"""Checks shared by the actions: what the database and our clients can take."""

from __future__ import annotations

import json
from typing import Any

from ..models.types import storable
from .errors import ActionError

MAX_TEXT = 10_000
MAX_PROPERTIES_BYTES = 16 * 1024


def check_storable(value: str, field: str) -> str:
    """PostgreSQL stores neither NUL characters nor lone surrogates; refuse them up front."""
    try:
        return storable(value)
    except ValueError as exc:
        raise ActionError("invalid_text", f"{field} {exc}") from exc


def check_text(text: str) -> str:
    """Message text is stored exactly as given; it must just say something."""
    if not text.strip():
        raise ActionError("empty_text", "message text is empty")
    if len(text) > MAX_TEXT:
        raise ActionError("text_too_long", f"message text is longer than {MAX_TEXT} characters")
    return check_storable(text, "text")


def check_properties(props: dict[str, Any], field: str = "properties") -> dict[str, Any]:
    """Free-form JSON from sites: bounded in size, storable in JSONB."""
    try:
        encoded = json.dumps(props, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ActionError("invalid_properties", f"{field} must be plain JSON") from exc
    if len(encoded.encode("utf-8", "surrogatepass")) > MAX_PROPERTIES_BYTES:
        raise ActionError("properties_too_large", f"{field} is larger than {MAX_PROPERTIES_BYTES} bytes")
    check_storable(encoded, field)
    if "\\u0000" in encoded:
        raise ActionError("invalid_text", f"{field} contains a NUL character")
    return props
