"""The OpenAPI document says what the server enforces: every documented bound on a query
parameter or a path id is one the server refuses to cross (so the document cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from chat_server.models.ids import MAX_ROW_ID as MAX_ID
from tests.appserver import AppServer
from tests.harness import Socket, login

pytestmark = pytest.mark.anyio


def violations(schema: dict[str, Any]) -> list[str]:
    """Values the schema documents as not allowed."""
    bad = []
    if "enum" in schema:
        bad.append("not-one-of-them")
    if "pattern" in schema:
        bad += [v for v in ("!", "abc", "-1", "9" * 30) if not re.search(schema["pattern"], v)][:2]
    if "maxLength" in schema:
        bad.append("x" * (schema["maxLength"] + 1))
    if schema.get("format") == "date":
        bad.append("2026-02-30")
    return bad


async def test_documented_query_and_path_bounds_are_enforced(tmp_path: Path) -> None:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}") as app:
        staff = await login(app)  # type: ignore[arg-type]
        sock = Socket(await websockets.connect(app.ws + "/ws/widget"))
        await sock.send(type="hello")
        visitor_token = (await sock.expect("welcome"))["token"]
        await sock.close()
        async with httpx.AsyncClient(base_url=app.http, timeout=10) as http:
            doc = (await http.get("/api/v1/openapi.json")).json()
            checked_query = checked_path = 0
            for path, methods in doc["paths"].items():
                for method, op in methods.items():
                    security = [next(iter(s)) for s in op.get("security", [])]
                    headers = ({"authorization": f"Bearer {staff}"} if "bearer" in security
                               else {"authorization": f"Visitor {visitor_token}"} if "visitor" in security else {})
                    params = op.get("parameters", [])
                    path_ids = {p["name"]: p["schema"] for p in params if p["in"] == "path"}
                    for name, schema in path_ids.items():
                        if schema["type"] == "integer":
                            assert schema == {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}, (path, name)
                    concrete = path
                    for name, schema in path_ids.items():
                        concrete = concrete.replace("{" + name + "}", "1" if schema["type"] == "integer" else "x")
                    for name, schema in path_ids.items():
                        if schema["type"] != "integer":
                            continue
                        for outside in (0, MAX_ID + 1):
                            url = path.replace("{" + name + "}", str(outside))
                            for other, s in path_ids.items():
                                url = url.replace("{" + other + "}", "1" if s["type"] == "integer" else "x")
                            r = await http.request(method.upper(), url, headers=headers)
                            assert r.status_code == 404, (method, url, r.text)
                            checked_path += 1
                    for p in params:
                        if p["in"] != "query":
                            continue
                        assert set(p["schema"]) - {"type", "default"}, (path, p)  # a documented bound
                        for value in violations(p["schema"]):
                            r = await http.request(method.upper(), concrete, params={p["name"]: value},
                                                   headers=headers, content=b"x" if method == "post" else None)
                            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", (
                                method, concrete, p["name"], value, r.status_code, r.text)
                            checked_query += 1
            assert checked_query > 20 and checked_path > 10
