"""docs/protocol.md describes every frame the code defines, with its fields."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from chat_server import frames

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def frame_models() -> list[type[BaseModel]]:
    found = []
    for value in vars(frames).values():
        is_frame = isinstance(value, type) and issubclass(value, (frames.ClientFrame, frames.ServerFrame))
        if is_frame and "type" in value.model_fields:
            found.append(value)
    return found


def test_every_frame_type_and_field_is_documented() -> None:
    models = frame_models()
    assert len(models) > 15
    missing = []
    for model in models:
        default = model.model_fields["type"].default
        annotation = str(model.model_fields["type"].annotation)
        names = [default] if isinstance(default, str) else re.findall(r"'([a-z.]+)'", annotation)
        for name in names:
            if f"`{name}`" not in DOC:
                missing.append(f"frame {name} ({model.__name__})")
        for field in model.model_fields:
            if field != "type" and f"`{field}" not in DOC:
                missing.append(f"field {field} of {model.__name__}")
    assert not missing, missing
