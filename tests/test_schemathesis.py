"""Schemathesis against the server's own OpenAPI document, on SQLite and PostgreSQL: requests
generated from every operation's declared paths, queries and bodies (valid ones and, in
negative mode, ones that break the schema) get an answer below 500, and a 2xx answer has the
shape the document promises. Bounded: a fixed number of examples per operation, derandomised so
a failure reproduces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.conftest import database_url
from tests.harness import ChatServer, login, visitor

EXAMPLES = 6
# Each would end the very session or key the other requests use (their own tests cover them).
LOCKOUTS = [("POST", "/api/v1/auth/logout"), ("PATCH", "/api/v1/operators/{id}"), ("PATCH", "/api/v1/me"),
            ("DELETE", "/api/v1/api-keys/{id}")]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """A server of its own: what the generated requests create and delete stays here. Channel
    loops are off, so a generated channel never reaches for the network."""
    tmp = tmp_path_factory.mktemp(f"fuzzed-{request.param}")
    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    chat = ChatServer(tmp, database_url(request.param, tmp, pg), CHAT_CHANNEL_WORKERS="false")
    chat.start()
    yield chat
    chat.stop()


class Credentials:
    def __init__(self, staff: str, visitor: str, api_key: str) -> None:
        self.staff, self.visitor, self.api_key = staff, visitor, api_key

    def for_operation(self, operation: dict[str, Any]) -> dict[str, str]:
        security = operation.get("security", [])
        if {"bearer": []} not in security and {"visitor": []} in security:
            return {"authorization": f"Visitor {self.visitor}"}
        if {"api_key": []} in security:
            return {"authorization": f"Bearer {self.api_key}"}
        return {"authorization": f"Bearer {self.staff}"}


@pytest.fixture(scope="module")
def credentials(fuzzed: ChatServer) -> Credentials:
    import anyio

    async def make() -> Credentials:
        token = await login(fuzzed)
        sock, welcome = await visitor(fuzzed)
        await sock.close()
        async with httpx.AsyncClient(base_url=fuzzed.http + "/api/v1", timeout=10,
                                     headers={"authorization": f"Bearer {token}"}) as http:
            key = (await http.post("/api-keys", json={"name": "backend"})).json()["secret"]
        return Credentials(token, welcome["token"], key)

    return anyio.run(make)


def operations(server: ChatServer) -> list[Any]:
    document = httpx.get(server.http + "/api/v1/openapi.json", timeout=10).json()
    loaded: Any = schemathesis.openapi.from_dict(document)
    loaded.config.generation.update(allow_x00=True)  # NUL in text is what PostgreSQL refuses
    for method, path in LOCKOUTS:
        loaded = loaded.exclude(method=method, path=path)
    return [result.ok() for result in loaded.get_all_operations()]


def fuzz(op: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, timeout=30,
                               checks=[not_a_server_error, response_schema_conformance])

    run()


def test_no_request_makes_the_server_fail(fuzzed: ChatServer, credentials: Credentials) -> None:
    failures: list[str] = []
    ops = operations(fuzzed)
    assert len(ops) > 60
    for op in ops:
        # Valid requests reach the queries; invalid ones test the door.
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(op, mode, fuzzed.http, credentials.for_operation(op.definition.raw))
            except Unsatisfiable:
                continue  # nothing about this operation can be sent wrong (no parameters, no body)
            except Exception as exc:  # noqa: BLE001 - every operation is tried; all failures are reported
                failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
