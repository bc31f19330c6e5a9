"""The shared column types' conversions: the remembered last value never answers for another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from chat_server.models.types import UTCDateTime


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgres"])
def test_a_repeated_moment_converts_as_a_new_one(dialect: object) -> None:
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    now = datetime(2026, 11, 30, 20, 0, 0, 123456, tzinfo=UTC)
    moscow = datetime(2026, 11, 30, 23, 0, 0, 123456, tzinfo=timezone(timedelta(hours=3)))
    later = now + timedelta(microseconds=1)
    values = (now, now, None, now, later, moscow, moscow, now)
    seen = [process(v) for v in values]
    # Each value through a processor of its own, which has nothing to remember.
    assert seen == [UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(v) for v in values]  # type: ignore[arg-type]
    assert seen[0] == seen[5]  # the same moment in another zone stores the same
    assert seen[4] != seen[0] and seen[2] is None
