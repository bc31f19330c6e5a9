"""A local VK API behind a requests transport adapter, mounted on vk-api's own sessions.

Shaped after https://dev.vk.com/ru/api: `POST https://api.vk.ru/method/<name>` answers
`{"response": ...}` or `{"error": {"error_code", "error_msg"}}`; Bots Long Poll answers
`{"ts", "updates"}` from the server `groups.getLongPollServer` named; uploads and files live
on their own hosts."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from urllib3.response import HTTPResponse

GROUP_ID = 229900
TOKEN = "vk1.a.community-token-for-tests-0123456789"


@dataclass
class Sent:
    peer_id: int
    text: str
    random_id: int
    message_id: int
    attachment: str


class FakeVk(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.sent: list[Sent] = []
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # path on files.vk.ru -> where it sends the client
        self.uploads: list[tuple[str, bytes]] = []
        self.users: dict[int, tuple[str, str]] = {}
        self.failures: dict[str, list[dict[str, Any] | None]] = {}
        # A bad day for the soak test: called for each messages.send, returns an error to
        # answer with, "timeout" for a request that never reached VK, or None.
        self.chaos: Callable[[], dict[str, Any] | str | None] | None = None
        # Bots Long Poll keeps its events for a while: each has a position (`ts`), and a poll
        # gets those from the position it names. The key expires now and then (`failed: 2`).
        self.events: list[dict[str, Any]] = []
        self.first_ts = 100
        self.key = "lp-key"
        # VK lost the events before this position: a poll from before it is answered `failed`
        # with this code (1: go on from the new position; 3: get a new key and position).
        self.lost_before = 0
        self.lost_code = 1
        self.down = False  # VK unreachable: every request fails to connect
        self.refused = 0  # requests that met `down`
        self._arrived = threading.Condition()
        self._ids = itertools.count(5000)
        self._by_random: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()

    def mount_on(self, session: requests.Session) -> None:
        session.mount("https://", self)

    def fail_next(self, method: str, code: int, message: str) -> None:
        self.failures.setdefault(method, []).append({"error_code": code, "error_msg": message})

    def fail_after(self, method: str, passes: int, code: int, message: str) -> None:
        """Let `passes` calls of `method` through, then answer the next one with an error."""
        self.failures.setdefault(method, []).extend([*([None] * passes), {"error_code": code, "error_msg": message}])

    @property
    def ts(self) -> int:
        return self.first_ts + len(self.events)

    def queue_event(self, event: dict[str, Any]) -> None:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    def lose_history(self, code: int) -> None:
        """VK loses its long-poll events so far; the conversations' history keeps them."""
        self.lost_before, self.lost_code = self.ts, code

    def _history(self) -> list[dict[str, Any]]:
        """Every customer message ever queued, newest first, as messages.getHistory has them."""
        found = [e["object"]["message"] for e in self.events if e.get("type") == "message_new"]
        return sorted(found, key=lambda m: (m["date"], m["id"]), reverse=True)

    def expire_key(self) -> None:
        self.key += "x"

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        url = urlsplit(request.url or "")
        if self.down:
            self.refused += 1
            raise requests.exceptions.ConnectionError(f"cannot connect to {url.netloc}")
        if url.netloc == "api.vk.ru" and url.path.startswith("/method/"):
            body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
            params = dict(parse_qsl(body))
            return self._json(request, self._method(url.path[len("/method/"):], params))
        if url.netloc == "lp.vk.ru":
            return self._json(request, self._long_poll(dict(parse_qsl(url.query))))
        if url.netloc == "upload.vk.ru":
            assert isinstance(request.body, bytes)
            self.uploads.append((request.headers.get("Content-Type", ""), request.body))
            return self._json(request, {"file": f"uploaded-{len(self.uploads)}"})
        if url.netloc == "files.vk.ru" and url.path in self.redirects:
            r = self._bytes(request, 302, b"")
            r.headers["Location"] = self.redirects[url.path]
            return r
        if url.netloc == "files.vk.ru" and url.path in self.files:
            return self._bytes(request, 200, self.files[url.path])
        return self._bytes(request, 404, b"not found")

    def close(self) -> None:
        return None

    def _method(self, name: str, p: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.calls.append((name, p))
            if p.get("access_token") != TOKEN:
                return {"error": {"error_code": 5, "error_msg": "User authorization failed"}}
            error = self.failures[name].pop(0) if self.failures.get(name) else None
            if error is None and self.chaos is not None and name == "messages.send":
                outcome = self.chaos()
                if outcome == "timeout":
                    raise requests.exceptions.ReadTimeout("VK did not answer in time")
                error = outcome if isinstance(outcome, dict) else None
            if error is not None:
                return {"error": error}
            if name == "messages.send":
                key = (int(p["peer_id"]), int(p["random_id"]))
                if key not in self._by_random:  # VK drops a repeated random_id
                    self._by_random[key] = next(self._ids)
                    self.sent.append(Sent(key[0], p.get("message", ""), key[1], self._by_random[key],
                                          p.get("attachment", "")))
                return {"response": self._by_random[key]}
            if name == "users.get":
                user_id = int(p["user_ids"])
                first, last = self.users.get(user_id, ("DELETED", ""))
                return {"response": [{"id": user_id, "first_name": first, "last_name": last}]}
            if name == "groups.getById":  # a community token: its own community
                return {"response": {"groups": [{"id": GROUP_ID, "name": "Acme Support", "screen_name": "acme_support",
                                                 "type": "group", "is_closed": 0}], "profiles": []}}
            if name == "groups.getLongPollServer":
                return {"response": {"key": self.key, "server": f"https://lp.vk.ru/wh{GROUP_ID}", "ts": str(self.ts)}}
            if name in ("messages.getConversations", "messages.getHistory"):
                history = self._history()
                if name == "messages.getHistory":
                    items = [m for m in history if m["peer_id"] == int(p["peer_id"])]
                else:  # one item per peer, by its last message
                    last: dict[int, dict[str, Any]] = {}
                    for m in history:
                        last.setdefault(m["peer_id"], m)
                    items = [{"conversation": {"peer": {"id": peer, "type": "user"}}, "last_message": m}
                             for peer, m in last.items()]
                start = int(p.get("offset", "0"))
                return {"response": {"count": len(items), "items": items[start:start + int(p.get("count", "20"))]}}
            if name == "docs.getMessagesUploadServer":
                return {"response": {"upload_url": "https://upload.vk.ru/upload.php?act=add_doc_im"}}
            if name == "docs.save":
                return {"response": {"type": "doc", "doc": {"id": 77, "owner_id": -GROUP_ID, "title": p["title"]}}}
        return {"error": {"error_code": 3, "error_msg": "Unknown method passed"}}

    def _long_poll(self, q: dict[str, str]) -> dict[str, Any]:
        if q.get("key") != self.key:
            return {"failed": 2}
        ts = int(q.get("ts") or self.ts)
        if ts < self.lost_before:
            return {"failed": 1, "ts": str(self.ts)} if self.lost_code == 1 else {"failed": 3}
        with self._arrived:
            if ts >= self.ts:
                self._arrived.wait(min(float(q.get("wait", "1")), 0.3))
            return {"ts": str(self.ts), "updates": self.events[ts - self.first_ts:]}

    def _json(self, request: requests.PreparedRequest, data: Any) -> requests.Response:
        return self._bytes(request, 200, json.dumps(data).encode(), "application/json")

    def _bytes(self, request: requests.PreparedRequest, status: int, data: bytes,
               ctype: str = "application/octet-stream") -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r.headers["Content-Type"] = ctype
        r.raw = HTTPResponse(body=io.BytesIO(data), preload_content=False, status=status)
        r.url = request.url or ""
        r.request = request
        return r
