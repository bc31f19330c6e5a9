"""docs/protocol.md's frame tables say what the models in frames.py say.

For each socket and direction, the table lists exactly the frame types the server accepts or
sends there. For each row, the top-level fields named in the "fields" column are compared with
the frame's model: their names, whether each is required (a `?` or a default in brackets marks
an optional field), whether it is an object (`{…}`) or a list of objects (`[…]`), and the values
listed for a choice (`text`/`note`). Client frames must be documented whole; a server frame's
row may leave out optional fields a socket never gets (the widget's `typing` has no
conversation id), never a required one; and it may call a field required that this socket
always gets although the shared model allows it to be absent.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from chat_server import frames

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


@dataclass
class DocField:
    name: str
    optional: bool
    shape: str  # "object", "list", or "" (a plain value)
    choices: set[str]


def section(heading: str, sub: str) -> dict[str, str]:
    """frame type -> fields cell, from the table under `## heading` / `### sub`."""
    part = DOC.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    table = part.split(f"### {sub}", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z.]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def parse_fields(cell: str) -> list[DocField]:
    """Top-level backticked names of a fields cell, with what follows each at depth 0."""
    found: list[DocField] = []
    depth, i = 0, 0
    while i < len(cell):
        ch = cell[i]
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "`" and depth == 0:
            end = cell.index("`", i + 1)
            name = cell[i + 1:end]
            rest = cell[end + 1:].lstrip()
            shape, choices, has_default = "", set(), False
            if rest.startswith("{"):
                shape = "object"
            elif rest.startswith("(["):
                has_default = True
            elif rest.startswith("["):
                shape = "list"
            if rest.startswith("("):
                inner = _bracketed(rest)
                has_default = has_default or bool(re.match(r"\((\[\]|\{\}|[0-9]+|`[^`]*`\s*,\s*default)", inner)) \
                    or "default" in inner
                if "/" in inner:
                    choices = set(re.findall(r"`([^`]+)`", inner.split(",")[0]))
            found.append(DocField(name.rstrip("?"), name.endswith("?") or has_default, shape, choices))
            i = end
        i += 1
    return found


def _bracketed(text: str) -> str:
    depth = 0
    for n, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return text[: n + 1]
    return text


def _args(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _args(typing.get_args(annotation)[0])
    if origin in (types.UnionType, typing.Union):
        return [a for arg in typing.get_args(annotation) for a in _args(arg)]
    return [annotation]


def model_shape(info: FieldInfo) -> str:
    for arg in _args(info.annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel) or typing.get_origin(arg) is dict or arg is dict:
            return "object"
        if typing.get_origin(arg) is list and any(
                isinstance(a, type) and issubclass(a, BaseModel) for a in typing.get_args(arg)):
            return "list"
    return ""


def model_choices(info: FieldInfo) -> set[str]:
    values: set[str] = set()
    for arg in _args(info.annotation):
        if typing.get_origin(arg) is Literal:
            values.update(str(v) for v in typing.get_args(arg))
        elif isinstance(arg, type) and issubclass(arg, enum.Enum):
            values.update(str(m.value) for m in arg)
    return values


def union_members(adapter_union: Any) -> dict[str, type[BaseModel]]:
    return {m.model_fields["type"].annotation.__args__[0]: m for m in _args(adapter_union)}


def compare(model: type[BaseModel], cell: str, *, whole: bool) -> list[str]:
    problems = []
    documented = {f.name: f for f in parse_fields(cell)}
    fields = {k: v for k, v in model.model_fields.items() if k != "type"}
    for name in documented.keys() - fields.keys():
        problems.append(f"{model.__name__}: `{name}` is documented but not a field")
    for name, info in fields.items():
        doc = documented.get(name)
        if doc is None:
            if whole or info.is_required():
                problems.append(f"{model.__name__}: field `{name}` is not documented")
            continue
        # A server frame's field that a socket always gets may be documented as required there
        # (the inbox's `typing` always names its conversation); the reverse is always wrong.
        if doc.optional == info.is_required() and (whole or doc.optional):
            problems.append(f"{model.__name__}.{name}: documented as {'optional' if doc.optional else 'required'}")
        if doc.shape and doc.shape != model_shape(info):
            problems.append(f"{model.__name__}.{name}: documented as {doc.shape}, the model says {model_shape(info) or 'a value'}")
        if doc.choices and doc.choices != model_choices(info):
            problems.append(f"{model.__name__}.{name}: choices {sorted(doc.choices)} vs {sorted(model_choices(info))}")
    return problems


def server_models(frame_type: str, prefer: str) -> type[frames.ServerFrame]:
    matches = [m for m in frames.SERVER_FRAMES if m.model_fields["type"].default == frame_type]
    if len(matches) > 1:
        matches = [m for m in matches if m.__name__.startswith(prefer)]
    assert len(matches) == 1, (frame_type, matches)
    return matches[0]


def test_client_frames_are_documented_whole() -> None:
    problems = []
    for heading, union in (("Widget socket", frames.VisitorClientFrame), ("Inbox socket", frames.OperatorClientFrame)):
        rows = section(heading, "Client → server")
        members = union_members(union)
        assert set(rows) == set(members), (heading, sorted(rows), sorted(members))
        for frame_type, model in members.items():
            problems += compare(model, rows[frame_type], whole=True)
    assert not problems, "\n".join(problems)


def test_server_frames_are_documented_with_every_required_field() -> None:
    problems = []
    seen: set[type[BaseModel]] = set()
    for heading, prefer in (("Widget socket", "Visitor"), ("Inbox socket", "Operator")):
        rows = section(heading, "Server → client")
        for frame_type, cell in rows.items():
            model = server_models(frame_type, prefer)
            seen.add(model)
            problems += compare(model, cell, whole=False)
    assert not problems, "\n".join(problems)
    assert set(frames.SERVER_FRAMES) == seen, set(frames.SERVER_FRAMES) - seen


def test_the_comparison_can_fail() -> None:
    """The checker itself: a wrong name, a wrong required-ness and a wrong choice are found."""
    model = union_members(frames.OperatorClientFrame)["message.send"]
    tail = "`attachment_ids` ([]), `channel?` (`widget`/`telegram`/`vk`/`email`)"
    right = f"`conversation_id`, `client_msg_id`, `text?`, `kind` (`text`/`note`, default `text`), {tail}"
    assert compare(model, right, whole=True) == []
    wrong = f"`conversation_id?`, `client_msg_id`, `texts?`, `kind` (`text`/`memo`, default `text`), {tail}"
    assert len(compare(model, wrong, whole=True)) == 4, compare(model, wrong, whole=True)
