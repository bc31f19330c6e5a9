"""Whether a community token works, asked of VK itself (groups.getById) before it is saved."""

from __future__ import annotations

import asyncio
from typing import Any

import requests
import vk_api

from .base import CredentialsRefused

TIMEOUT = 15.0
# User authorization failed; access denied; group authorization failed.
TOKEN_ERRORS = {5, 15, 27, 28}


def _groups(answer: Any) -> list[dict[str, Any]]:
    # API 5.199 answers {"groups": [...]}; older versions a bare list.
    groups = answer.get("groups") if isinstance(answer, dict) else answer
    return [g for g in groups or [] if isinstance(g, dict)]


def _ask(vk: vk_api.VkApi, group_id: int, longpoll: bool) -> dict[str, Any]:
    try:
        groups = _groups(vk.method("groups.getById"))  # a community token names its own community
    except vk_api.ApiError as exc:
        if exc.code in TOKEN_ERRORS:
            raise CredentialsRefused(
                "token_refused",
                f"VK refused this token ({exc.error.get('error_msg')}). Create an access key in the community: "
                "Manage → API usage (Работа с API) → Access tokens, with permission to access messages.") from exc
        raise CredentialsRefused("service_refused", f"VK answered groups.getById with error {exc.code}: "
                                 f"{exc.error.get('error_msg')}") from exc
    if not groups:
        raise CredentialsRefused("token_refused", "this is not a community token: VK names no community for it")
    group = groups[0]
    if group.get("id") != group_id:
        raise CredentialsRefused(
            "wrong_community",
            f"this token belongs to the community {group.get('name')!r} (id {group.get('id')}), not to {group_id}")
    if longpoll:
        try:
            vk.method("groups.getLongPollServer", {"group_id": group_id})
        except vk_api.ApiError as exc:
            raise CredentialsRefused(
                "longpoll_disabled",
                f"VK refused Bots Long Poll ({exc.error.get('error_msg')}). Turn it on in the community: Manage → "
                "API usage → Long Poll API, with the message events; or choose the Callback API.") from exc
    screen_name = group.get("screen_name")
    return {"screen_name": screen_name} if isinstance(screen_name, str) and screen_name else {}


async def check_community(vk: vk_api.VkApi, group_id: int, longpoll: bool) -> dict[str, Any]:
    """The community's screen name (for the vk.me link); CredentialsRefused when the token is
    refused, names another community, Long Poll is off, or VK cannot be reached."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_ask, vk, group_id, longpoll), TIMEOUT)
    except (requests.RequestException, TimeoutError, OSError) as exc:
        raise CredentialsRefused("service_unreachable",
                                 f"VK's API could not be reached: {exc or 'no answer in time'}") from exc
