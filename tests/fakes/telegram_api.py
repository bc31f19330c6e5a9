"""A small Telegram Bot API server (aiohttp) for aiogram's `Bot`, shaped after
https://core.telegram.org/bots/api: `/bot<token>/<method>` answers `{"ok", "result"}` or
`{"ok": false, "error_code", "description", "parameters"}`; files at `/file/bot<token>/<path>`."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.services import free_port

BOT_ID = 7000001
TOKEN = f"{BOT_ID}:AAE_fake-token-for-tests_0123456789"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


class FakeBotApi:
    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}
        self.updates: list[dict[str, Any]] = []
        # Per method, what the next calls meet: an error to answer with, or None to pass.
        self.failures: dict[str, list[dict[str, Any] | None]] = {}
        # A bad day for the soak test: called for each send, returns an error to answer with,
        # "hang" to never answer (a timeout), or None to answer normally.
        self.chaos: Callable[[str], dict[str, Any] | str | None] | None = None
        self.hang_seconds = 5.0
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(500_000)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeBotApi:
        await self.come_back()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.go_away()

    async def go_away(self) -> None:
        """Unreachable: the port refuses connections (updates queued meanwhile are kept)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def come_back(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    # --- what tests do ----------------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def queue_update(self, update: dict[str, Any]) -> None:
        """For long polling: the next getUpdates returns it."""
        self.updates.append(update)
        self._new_update.set()

    def fail_next(self, method: str, error: dict[str, Any]) -> None:
        self.failures.setdefault(method, []).append(error)

    def fail_after(self, method: str, passes: int, error: dict[str, Any]) -> None:
        """Let `passes` calls of `method` through, then answer the next one with `error`."""
        self.failures.setdefault(method, []).extend([*([None] * passes), error])

    def sent(self, method: str = "sendMessage") -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def next_update_id(self) -> int:
        return next(self._update_ids)

    # --- the API ----------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            form = await request.post()
            for k, v in form.items():
                if isinstance(v, web.FileField):
                    files[k] = v.file.read()
                    params[k] = v.filename
                else:
                    params[k] = _json_or_str(str(v))
        # Files travel as multipart parts that parameters name with "attach://<part>".
        for k, v in list(params.items()):
            if isinstance(v, str) and v.startswith("attach://") and v[9:] in files:
                files[k] = files.pop(v[9:])
                params[k] = params.pop(v[9:])
        error = self.failures[method].pop(0) if self.failures.get(method) else None
        if error is None and self.chaos is not None and method.startswith("send"):
            outcome = self.chaos(method)
            if outcome == "hang":
                self.calls.append(Call(method + ":hung", params, files))
                # Longer than the sender waits; then nothing is delivered (the request was lost).
                await asyncio.sleep(self.hang_seconds)
                outcome = {"error_code": 504, "description": "Gateway Timeout"}
            error = outcome if isinstance(outcome, dict) else None
        if error is not None:
            self.calls.append(Call(method + ":refused", params, files))
            return web.json_response({"ok": False, **error}, status=error["error_code"])
        if method != "getUpdates":
            self.calls.append(Call(method, params, files))
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.json_response({"ok": True, "result": await handler(params)})

    async def _m_getMe(self, p: dict[str, Any]) -> Any:  # noqa: N802
        return {"id": BOT_ID, "is_bot": True, "first_name": "Support", "username": "support_test_bot"}

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:  # noqa: N802
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:  # noqa: N802
        return True

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:  # noqa: N802
        offset = int(p.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), min(float(p.get("timeout") or 0), 0.5))
            except TimeoutError:
                pass
        return [u for u in self.updates if u["update_id"] >= offset][:100]

    def _sent_message(self, p: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": int(p["chat_id"]), "type": "private"}, **extra}

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:  # noqa: N802
        return self._sent_message(p, text=p["text"])

    async def _m_sendDocument(self, p: dict[str, Any]) -> Any:  # noqa: N802
        return self._sent_message(p, document={"file_id": "sent-doc", "file_unique_id": "u-sent-doc"},
                                  **({"caption": p["caption"]} if p.get("caption") else {}))

    async def _m_getFile(self, p: dict[str, Any]) -> Any:  # noqa: N802
        file_id = p["file_id"]
        if file_id not in self.files:
            raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error_code": 400,
                                                      "description": "Bad Request: invalid file_id"}))
        return {"file_id": file_id, "file_unique_id": "u" + file_id, "file_size": len(self.files[file_id]),
                "file_path": f"documents/{file_id}"}

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].split("/")[-1]
        if request.match_info["token"] != TOKEN or file_id not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")


def _json_or_str(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
