"""The migrations build the schema the models describe, on SQLite and PostgreSQL, and every
key, every reference to one and every sequence number is 64-bit on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import chat_server.models  # noqa: F401  (registers the tables)
from chat_server import migrate
from chat_server.models.ids import MAX_ROW_ID
from tests.services import PostgresServer

pytestmark = pytest.mark.anyio

# Integer columns that count something small, not rows.
SMALL = {("contact", "sessions"), ("contact", "score"), ("attachment", "size"), ("outbound_job", "attempts"),
         ("conversation", "epoch"), ("audit_record", "rows"), ("contact_identity", "token_version"),
         ("score_entry", "points"), ("trigger", "version"), ("site_settings", "auto_messages_per_day")}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_models_match_the_migrated_schema(db_url: str) -> None:
    await migrate.upgrade_async(db_url)
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_postgres_keys_and_sequence_numbers_are_bigint(postgres: PostgresServer) -> None:
    url = postgres.create_database("chat_bigint")
    await migrate.upgrade_async(url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            columns = (await conn.execute(text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('smallint', 'integer', 'bigint') "
                "AND table_name <> 'alembic_version'"))).all()
            keys = {(r.table_name, r.column_name) for r in (await conn.execute(text(
                "SELECT kcu.table_name, kcu.column_name FROM information_schema.table_constraints tc "
                "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
                "AND kcu.table_schema = tc.table_schema "
                "WHERE tc.table_schema = 'public' AND tc.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')"))).all()}
            sequences = (await conn.execute(text(
                "SELECT sequence_name, data_type, maximum_value FROM information_schema.sequences "
                "WHERE sequence_schema = 'public'"))).all()
            # A row at the top of the range can be written and found again.
            await conn.execute(text("INSERT INTO operator (id, name, email, role, password_hash, availability, "
                                    "is_active, created_at) VALUES (:id, 'x', 'x@example.com', 'admin', 'x', "
                                    "'away', true, now())"), {"id": MAX_ROW_ID})
            assert (await conn.execute(text("SELECT id FROM operator WHERE id = :id"), {"id": MAX_ROW_ID})).scalar() \
                == MAX_ROW_ID
            await conn.rollback()
    finally:
        await engine.dispose()
    kinds = {(r.table_name, r.column_name): r.data_type for r in columns}
    integer_keys = keys & set(kinds)  # (text keys, like session token hashes, are not ids)
    assert len(integer_keys) > 20, integer_keys
    assert {k: kinds[k] for k in integer_keys if kinds[k] != "bigint"} == {}
    # Ids kept without a constraint (message.author_id, ...) and sequence numbers too.
    wrong = {col: kind for col, kind in kinds.items() if col not in SMALL and kind != "bigint"}
    assert not wrong, wrong
    assert len(sequences) >= 10
    assert [s for s in sequences if s.data_type != "bigint" or int(s.maximum_value) != MAX_ROW_ID] == []


async def test_the_bigint_migration_goes_down_and_up_again(postgres: PostgresServer) -> None:
    url = postgres.create_database("chat_bigint_down")

    async def message_id_type() -> str:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return str((await conn.execute(text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'message' AND column_name = 'id'"))).scalar_one())
        finally:
            await engine.dispose()

    await migrate.upgrade_async(url)
    assert await message_id_type() == "bigint"
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0004")
    assert await message_id_type() == "integer"
    await migrate.upgrade_async(url)
    assert await message_id_type() == "bigint"
