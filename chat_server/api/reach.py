"""The links in automatic emails: the open pixel, click redirects, and unsubscribing (a page
in the contact's language, and RFC 8058's one-click POST). Public: each link carries a token
the server signed (automatic_email.py); a damaged or forged one is refused with 400."""

from __future__ import annotations

import base64
import html

from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..actions.email_tracking import Target, do_record_click, do_record_open, do_unsubscribe, unsubscribe_target
from ..actions.errors import ActionError
from ..automatic_email import PAGE, language
from .framework import Auth, Call, Operation, endpoint

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
BROKEN = {"en": "This link is damaged or no longer works.", "ru": "Ссылка повреждена или больше не действует."}


def _token(c: Call[None, None]) -> str:
    return str(c.request.path_params["token"])


async def opened(c: Call[None, None]) -> Response:
    await do_record_open(c.rt, _token(c))
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def clicked(c: Call[None, None]) -> Response:
    return RedirectResponse(await do_record_click(c.rt, _token(c)), status_code=302, headers=NO_STORE)


def _page(lang: str, body: str, status: int = 200) -> HTMLResponse:
    words = PAGE[language(lang)]
    return HTMLResponse(
        f'<!DOCTYPE html><html lang="{language(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(words["title"])}</title></head>'
        '<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
        f"{body}</body></html>", status_code=status, headers=NO_STORE)


def _failed(c: Call[None, None], exc: ActionError) -> HTMLResponse:
    lang = language(c.request.headers.get("accept-language"))
    return _page(lang, f"<p>{html.escape(BROKEN[lang])}</p>", exc.status)


def _words(t: Target) -> dict[str, str]:
    return {k: html.escape(v.format(site=t.site or "us", email=t.email)) for k, v in PAGE[language(t.lang)].items()}


async def unsubscribe_page(c: Call[None, None]) -> Response:
    """Asks before unsubscribing: mail scanners fetch every link, and a GET must change nothing."""
    try:
        target = await unsubscribe_target(c.rt, _token(c))
    except ActionError as exc:
        return _failed(c, exc)
    w = _words(target)
    return _page(target.lang, f'<h1>{w["title"]}</h1><p>{w["ask"]}</p><form method="post">'
                              '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                              f'<button type="submit">{w["button"]}</button></form>')


async def unsubscribe(c: Call[None, None]) -> Response:
    """The page's button, or a mail client's one-click POST (`List-Unsubscribe=One-Click`)."""
    try:
        target = await do_unsubscribe(c.rt, _token(c))
    except ActionError as exc:
        return _failed(c, exc)
    w = _words(target)
    return _page(target.lang, f'<h1>{w["title"]}</h1><p>{w["done"]}</p>')


routes: list[Operation] = [
    endpoint("GET", "/email/open/{token}", opened, auth=Auth.public,
             summary="An automatic email was opened (its tracking pixel, a GIF)"),
    endpoint("GET", "/email/click/{token}", clicked, auth=Auth.public,
             summary="A link in an automatic email: recorded, then redirected (302) to its address"),
    endpoint("GET", "/email/unsubscribe/{token}", unsubscribe_page, auth=Auth.public,
             summary="The unsubscribe page of an automatic email (asks to confirm)"),
    endpoint("POST", "/email/unsubscribe/{token}", unsubscribe, auth=Auth.public,
             summary="Unsubscribe from automatic emails (the page's button, or RFC 8058 one-click)"),
]
