"""`chat-server import FILE`: historical events from JSON lines or CSV, through the same
writer as live events (segments and scores follow), in batches of 1,000.

Each line is an event as `POST /api/v1/track` takes it: the contact by `user_id` (created
when unknown), `email` or `contact_id`; `name`; optional `properties`, `url`, `occurred_at`
(ISO 8601 with a zone) and `event_id`. With an `event_id`, importing the file again stores
nothing twice. CSV has a header row with those columns; `properties` is a JSON object, and a
column `properties.KEY` sets one property (as text). Lines that cannot be imported are
reported with their number and reason; the others are imported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from tqdm import tqdm

from .actions.errors import ActionError
from .actions.tracking import MAX_BATCH, TrackItem, check_track_item, do_track, resolve_contacts
from .behaviour.filters import Storable
from .models.ids import RowId
from .runtime import Runtime


class ImportLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None
    email: Annotated[str, Field(min_length=3, max_length=320), Storable] | None = None
    contact_id: RowId | None = None
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    properties: dict[str, Any] = Field(default_factory=dict)
    url: Annotated[str, Field(max_length=2000), Storable] | None = None
    occurred_at: AwareDatetime | None = None
    event_id: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> ImportLine:
        if sum(v is not None for v in (self.user_id, self.email, self.contact_id)) != 1:
            raise ValueError("give exactly one of user_id, email, contact_id")
        return self

    def address(self) -> tuple[str, Any]:
        if self.contact_id is not None:
            return ("contact_id", self.contact_id)
        if self.email is not None:
            return ("email", self.email.strip().lower())
        return ("user_id", self.user_id)


@dataclass
class Summary:
    imported: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # line number, reason


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, the line as a dict) or (line number, why it is not one)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, _from_csv(row)
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON: {exc.msg}"
                continue
            yield number, value if isinstance(value, dict) else "not a JSON object"


def _from_csv(row: dict[str | None, Any]) -> dict[str, Any] | str:
    if None in row:
        return "more cells than the header has columns"
    line: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, value in row.items():
        assert key is not None
        if value in ("", None):
            continue
        if key == "properties":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                return "properties: not a JSON object"
            if not isinstance(parsed, dict):
                return "properties: not a JSON object"
            props.update(parsed)
        elif key.startswith("properties."):
            props[key[len("properties."):]] = value
        elif key == "contact_id":
            line[key] = int(value) if value.isdigit() else value
        else:
            line[key] = value
    if props:
        line["properties"] = props
    return line


async def import_file(rt: Runtime, path: Path, progress: bool = True, now: datetime | None = None) -> Summary:
    summary = Summary()
    with path.open(encoding="utf-8", errors="replace") as f:
        total = sum(1 for _ in f)
    bar = tqdm(total=total, unit=" lines", disable=not progress, desc=path.name)
    batch: list[tuple[int, ImportLine]] = []
    try:
        for number, raw in read_lines(path):
            bar.update(1)
            if isinstance(raw, str):
                summary.rejected.append((number, raw))
                continue
            try:
                line = ImportLine.model_validate(raw)
                check_track_item(_item(line, 0), now)
            except ValidationError as exc:
                summary.rejected.append((number, _reason(exc)))
                continue
            except ActionError as exc:
                summary.rejected.append((number, exc.message))
                continue
            batch.append((number, line))
            if len(batch) >= MAX_BATCH:
                await _store(rt, batch, summary)
                batch = []
        if batch:
            await _store(rt, batch, summary)
    finally:
        bar.close()
    summary.rejected.sort()
    return summary


def _item(line: ImportLine, contact_id: int) -> TrackItem:
    return TrackItem(contact_id, line.name, line.properties, line.url, line.occurred_at, line.event_id)


async def _store(rt: Runtime, batch: list[tuple[int, ImportLine]], summary: Summary) -> None:
    # Addresses one by one, so an unknown email rejects its own lines, not the batch.
    contacts: dict[tuple[str, Any], int | str] = {}
    for _, line in batch:
        key = line.address()
        if key not in contacts:
            try:
                contacts[key] = (await resolve_contacts(rt, [key]))[0]
            except ActionError as exc:
                contacts[key] = exc.message.split(": ", 1)[-1]
    items, numbers = [], []
    for number, line in batch:
        found = contacts[line.address()]
        if isinstance(found, str):
            summary.rejected.append((number, found))
        else:
            items.append(_item(line, found))
            numbers.append(number)
    if not items:
        return
    ids = await do_track(rt, items)
    summary.imported += sum(1 for i in ids if i is not None)
    summary.duplicates += sum(1 for i in ids if i is None)
