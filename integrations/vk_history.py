"""Catching up when Bots Long Poll says its events were lost.

VK keeps a community's long-poll events for a while only. Past that, or when its servers lose
them, a poll is answered `failed: 1` (history lost, go on from a new position) or `failed: 3`
(key and position lost), and vk-api moves on silently: whatever the customers wrote in between
would never reach the inbox. The conversations' own history still has it, so the listener asks
`messages.getConversations` which conversations moved since the last poll it heard, reads their
`messages.getHistory` from then on, and hands the messages on as the events they would have
been. Messages already stored are known by their VK ids and stored once.

The listener's cursor carries the moment it last heard VK (`"ts:unix seconds"`), so a catch-up
after a restart knows where to start; a bare `ts` from before is still read.
"""

from __future__ import annotations

import time
from typing import Any

import requests
import vk_api
from vk_api.bot_longpoll import VkBotLongPoll

PAGE = 200  # the most either method returns per call
MAX_PAGES = 50  # 10,000 conversations, or messages of one conversation: a bound on one catch-up
SKEW = 120  # seconds of slack between our clock and VK's message dates
UNKNOWN_LOOKBACK = 86_400  # a cursor without its moment: look back a day (VK keeps events about as long)


class WatchedLongPoll(VkBotLongPoll):  # type: ignore[misc]  # vk-api has no type hints
    """vk-api's poller, remembering when VK answered that events were lost."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost = False
        self.session.hooks["response"].append(self._watch)

    def _watch(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        try:
            answer = response.json()
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("failed") in (1, 3):
            self.lost = True


def cursor(ts: Any, heard_at: float) -> str:
    return f"{ts}:{int(heard_at)}"


def read_cursor(stored: str | None) -> tuple[str | None, float | None]:
    """The position to resume from, and since when VK's events have all been heard."""
    if not stored:
        return None, None
    ts, _, moment = stored.partition(":")
    return ts, float(moment) if moment.isdigit() else time.time() - UNKNOWN_LOOKBACK


def missed_events(vk: vk_api.VkApi, group_id: int, since: float) -> list[dict[str, Any]]:
    """The messages of every conversation that moved since `since`, oldest first, shaped as the
    `message_new` (the customer's) and `message_reply` (the community's) events they were."""
    since -= SKEW
    peers: list[int] = []
    for page in range(MAX_PAGES):
        items = vk.method("messages.getConversations", {"count": PAGE, "offset": page * PAGE}).get("items") or []
        recent = [c for c in items if (c.get("last_message") or {}).get("date", 0) >= since]
        peers += [c["conversation"]["peer"]["id"] for c in recent]
        if len(recent) < len(items) or len(items) < PAGE:
            break  # newest first: the rest moved earlier
    messages: list[dict[str, Any]] = []
    for peer in peers:
        for page in range(MAX_PAGES):
            items = vk.method("messages.getHistory", {"peer_id": peer, "count": PAGE, "offset": page * PAGE}).get(
                "items") or []
            recent = [m for m in items if m.get("date", 0) >= since]
            messages += recent
            if len(recent) < len(items) or len(items) < PAGE:
                break
    messages.sort(key=lambda m: (m.get("date", 0), m.get("id", 0)))
    return [{"type": "message_reply", "group_id": group_id, "object": m} if m.get("out")
            else {"type": "message_new", "group_id": group_id, "object": {"message": m}} for m in messages]
