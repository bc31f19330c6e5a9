"""Whether a bot token works, asked of the Bot API itself (getMe) before the bot is saved."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramNotFound, TelegramUnauthorizedError

from .base import CredentialsRefused

TIMEOUT = 15.0


async def check_bot(bot: Bot, server: str) -> dict[str, Any]:
    """The bot's username from getMe; CredentialsRefused when the token is not a bot's or the
    Bot API server cannot be reached. A username given that is not the token's is replaced by
    the real one, so the widget's "continue in Telegram" link opens this bot."""
    try:
        me = await asyncio.wait_for(bot.get_me(request_timeout=int(TIMEOUT)), TIMEOUT + 1)
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        # Telegram answers 401 for a revoked token and 404 for one that never existed.
        raise CredentialsRefused(
            "token_refused",
            f"Telegram refused this bot token ({exc.message}). Copy the token again from @BotFather "
            "(/mybots → your bot → API Token); if it was revoked, take the new one.") from exc
    except (TelegramNetworkError, TimeoutError, OSError) as exc:
        raise CredentialsRefused(
            "service_unreachable",
            f"the Telegram Bot API server {server} could not be reached: {exc or 'no answer in time'}",
        ) from exc
    except TelegramAPIError as exc:
        raise CredentialsRefused("service_refused", f"Telegram answered getMe with an error: {exc.message}") from exc
    if not me.is_bot or not me.username:
        raise CredentialsRefused("token_refused", "this token does not belong to a bot")
    return {"bot_username": me.username}
