"""One definition of a row id and of a sequence number: 64 bits everywhere.

Keys, references and counters are BIGINT on PostgreSQL (the event table alone passes 2^31 rows
within days at a few thousand a second); on SQLite they stay INTEGER, which is 64-bit already
and, as INTEGER PRIMARY KEY, the rowid's alias that numbers new rows. Whatever names a row from
outside (a REST path, a body or query field, a socket frame) is a `RowId`: a number past 2^63-1
names nothing and no database can even compare with it, so it is refused as invalid before any
query. `format: int64` marks both types in the OpenAPI document and the frame schemas.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import BigInteger, Integer

MAX_ROW_ID = 2**63 - 1  # the largest BIGINT, and the largest SQLite integer

# The column type of every key, every reference to one and every sequence number.
Int64 = BigInteger().with_variant(Integer(), "sqlite")

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID, json_schema_extra={"format": "int64"})]
# A place in a thread (seq, read pointers, epochs): 0 is "before the first".
SeqNumber = Annotated[int, Field(ge=0, le=MAX_ROW_ID, json_schema_extra={"format": "int64"})]
