"""Automatic (proactive) emails: the HTML part made from the message's text, with an open
pixel, click-tracking redirects and an unsubscribe link, and the RFC 8058 one-click headers.

Every link carries a signed token (itsdangerous, keyed by the server's secret, a salt per
purpose) naming the message — and, for a click, the address it leads to. Nothing unsigned is
ever redirected to, so the click endpoint is no open redirect; a token cannot be moved from
one purpose to another (salts), and forging one needs the secret key.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer

from integrations.base import OutboundMessage

from .models import Message
from .settings import Settings

Purpose = Literal["open", "click", "unsubscribe"]
_URL = re.compile(r"https?://[^\s<>\"']+", re.I)
_TRAILING = ".,;:!?)]}'\""
MAX_TOKEN = 3000  # a click token holds its target address (at most 2000 characters)

FOOTER = {
    "en": ("You received this automatic message from {site}.", "Unsubscribe"),
    "ru": ("Это автоматическое сообщение от {site}.", "Отписаться"),
}
PAGE = {
    "en": {"title": "Unsubscribe", "ask": "Stop automatic emails from {site} to {email}?",
           "button": "Unsubscribe", "done": "Done: {email} will get no more automatic emails from {site}."},
    "ru": {"title": "Отписка", "ask": "Больше не присылать автоматические письма от {site} на {email}?",
           "button": "Отписаться", "done": "Готово: {site} больше не будет присылать автоматические письма на {email}."},
}


def language(value: Any) -> Literal["en", "ru"]:
    """The contact's language (`ru-RU`, `ru`, …) among those the footer and page speak."""
    return "ru" if isinstance(value, str) and value.lower().startswith("ru") else "en"


def _serializer(secret: str, purpose: Purpose) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"automatic-email-{purpose}", signer_kwargs={"digest_method": hashlib.sha256})


def issue(secret: str, purpose: Purpose, message_id: int, url: str | None = None) -> str:
    return str(_serializer(secret, purpose).dumps([message_id, url] if url is not None else [message_id]))


def is_web_address(url: str) -> bool:
    return bool(re.match(r"^https?://[^/\s]", url, re.I)) and len(url) <= 2000


def read(secret: str, purpose: Purpose, token: str) -> tuple[int, str | None] | None:
    """(message id, target address) of a genuine token for this purpose; None otherwise."""
    if len(token) > MAX_TOKEN:
        return None
    try:
        value = _serializer(secret, purpose).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        return None
    message_id = value[0]
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id <= 0:
        return None
    url = value[1] if len(value) == 2 else None
    if purpose == "click" and not (isinstance(url, str) and is_web_address(url)):
        return None
    return message_id, url


def link(settings: Settings, purpose: Purpose, message_id: int, url: str | None = None) -> str:
    token = issue(settings.effective_secret_key, purpose, message_id, url)
    return f"{settings.effective_public_url}/api/v1/email/{purpose}/{token}"


def _split_url(match: str) -> tuple[str, str]:
    """A URL as found in prose, and the punctuation after it that belongs to the sentence."""
    url = match.rstrip(_TRAILING)
    return url, match[len(url):]


def render_html(settings: Settings, message_id: int, text: str, site: str, lang: str) -> str:
    """The text as simple HTML: paragraphs and line breaks kept, links tracked, a pixel and
    an unsubscribe footer."""
    parts: list[str] = []
    last = 0
    for found in _URL.finditer(text):
        url, tail = _split_url(found.group(0))
        parts.append(html.escape(text[last:found.start()]))
        target = link(settings, "click", message_id, url) if is_web_address(url) else url
        parts.append(f'<a href="{html.escape(target)}">{html.escape(url)}</a>{html.escape(tail)}')
        last = found.end()
    parts.append(html.escape(text[last:]))
    body = "".join(parts)
    paragraphs = [p.replace("\n", "<br>\n") for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    sent_by, unsubscribe = FOOTER[language(lang)]
    return (
        f'<!DOCTYPE html>\n<html lang="{language(lang)}"><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:15px;line-height:1.5;color:#111">\n'
        + "".join(f"<p>{p}</p>\n" for p in paragraphs)
        + f'<p style="font-size:12px;color:#777">{html.escape(sent_by.format(site=site))} '
        f'<a href="{html.escape(link(settings, "unsubscribe", message_id))}">{unsubscribe}</a></p>\n'
        f'<img src="{html.escape(link(settings, "open", message_id))}" width="1" height="1" alt="" '
        'style="display:block;border:0">\n</body></html>\n'
    )


def dress(settings: Settings, message: Message, outbound: OutboundMessage, site: str) -> None:
    """Turn the queued reply into an automatic email: its own thread and subject, HTML beside
    the text, the unsubscribe link in both, and RFC 8058 one-click unsubscription."""
    assert message.id is not None
    lang = language(message.meta.get("lang"))
    unsubscribe_url = link(settings, "unsubscribe", message.id)
    sent_by, unsubscribe = FOOTER[lang]
    outbound.new_thread = True
    outbound.subject = str(message.meta.get("subject") or "") or site
    outbound.in_reply_to, outbound.references = None, []
    outbound.html = render_html(settings, message.id, message.text, site, lang)
    outbound.text = f"{message.text}\n\n-- \n{sent_by.format(site=site)}\n{unsubscribe}: {unsubscribe_url}\n"
    outbound.headers = {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        # RFC 3834: vacation responders do not answer automatic mail.
        "Auto-Submitted": "auto-generated",
    }


def is_automatic_email(message: Message) -> bool:
    return str(message.channel) == "email" and str(message.kind) == "automatic"
