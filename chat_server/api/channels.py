"""Channel settings (admins), the channels' webhooks, the widget's "continue in" links,
stored channel files and the original text of channel messages."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..actions.channels import (
    do_create_instance,
    do_delete_instance,
    do_update_instance,
    get_instance,
    list_instances,
)
from ..actions.errors import ActionError, NotFound
from ..actions.validation import check_properties
from ..channels import ChannelService
from ..models import ChannelInstance, Conversation, Message
from .framework import Call, _details
from .routes import PREFIX, api
from .schemas import Body

log = logging.getLogger(__name__)

MASK = "••••"


class ChannelCreateBody(Body):
    channel: Literal["telegram", "vk", "email"]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    enabled: bool = True
    config: dict[str, Any]


class ChannelUpdateBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    enabled: bool | None = None
    # Merged over the stored settings; a secret left out (or sent back masked) is kept.
    config: dict[str, Any] | None = None


class ChannelView(BaseModel):
    id: int
    channel: str
    name: str
    enabled: bool
    config: dict[str, Any]
    webhook_path: str
    # Where polling stopped (Telegram offset, VK ts, IMAP uidvalidity:uid).
    cursor: str | None


class ChannelList(BaseModel):
    items: list[ChannelView]


class ChannelLink(BaseModel):
    channel: Literal["telegram", "vk"]
    url: str


class ChannelLinks(BaseModel):
    links: list[ChannelLink]


class OriginalView(BaseModel):
    message_id: int
    text: str
    original: str
    subject: str | None
    edits: list[dict[str, Any]]
    # Set when the update was only partly understood: what was not, and the update as it came.
    partly_understood: str | None = None
    raw: dict[str, Any] | None = None


def _service(c: Call) -> ChannelService:
    service: ChannelService = c.request.state.channels
    return service


def mask(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    return MASK + value[-4:] if len(value) >= 12 else MASK


def channel_view(service: ChannelService, instance: ChannelInstance) -> ChannelView:
    assert instance.id is not None
    secrets = service.adapter(instance.channel).secret_fields
    config = {k: mask(v) if k in secrets else v for k, v in instance.config.items()}
    return ChannelView(id=instance.id, channel=instance.channel, name=instance.name, enabled=instance.enabled,
                       config=config, webhook_path=f"{PREFIX}/channels/{instance.id}/webhook",
                       cursor=instance.cursor)


def _validated(service: ChannelService, channel: str, config: dict[str, Any]) -> dict[str, Any]:
    model = service.adapter(channel).config_model
    try:
        checked = model.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidConfig(exc) from exc
    return check_properties(checked, "config")  # storable in JSONB: no NULs, bounded


class InvalidConfig(ActionError):
    status = 422

    def __init__(self, exc: ValidationError) -> None:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in _details(exc))
        super().__init__("invalid_config", f"the channel settings are not valid: {detail}"[:1000])


async def _after_change(c: Call, instance: ChannelInstance) -> None:
    service = _service(c)
    await service.refresh()
    public_url = instance.config.get("public_url")
    if instance.enabled and instance.config.get("mode") == "webhook" and public_url:
        try:
            await service.register(instance, public_url)
        except Exception as exc:
            raise ActionError("webhook_registration_failed",
                              f"saved, but the webhook could not be registered: {exc}"[:500]) from exc


@api.add("GET", "/channels", summary="Channel instances (admins); secrets masked", response=ChannelList, auth="admin")
async def channels_list(c: Call) -> ChannelList:
    service = _service(c)
    return ChannelList(items=[channel_view(service, i) for i in await list_instances(c.rt)])


@api.add("POST", "/channels", summary="Add a bot, community or mailbox (admins)", body=ChannelCreateBody,
         response=ChannelView, auth="admin", status=201)
async def channels_create(c: Call) -> ChannelView:
    b: ChannelCreateBody = c.body
    service = _service(c)
    instance = await do_create_instance(c.rt, b.channel, b.name, _validated(service, b.channel, b.config))
    if not b.enabled:
        assert instance.id is not None
        instance = await do_update_instance(c.rt, instance.id, enabled=False)
    await _after_change(c, instance)
    return channel_view(service, instance)


@api.add("GET", "/channels/{id:int}", summary="One channel instance (admins)", response=ChannelView, auth="admin")
async def channels_get(c: Call) -> ChannelView:
    return channel_view(_service(c), await get_instance(c.rt, c.path_int("id")))


@api.add("PATCH", "/channels/{id:int}", summary="Change a channel instance (admins)", body=ChannelUpdateBody,
         response=ChannelView, auth="admin")
async def channels_update(c: Call) -> ChannelView:
    b: ChannelUpdateBody = c.body
    service = _service(c)
    instance = await get_instance(c.rt, c.path_int("id"))
    config = None
    if b.config is not None:
        secrets = service.adapter(instance.channel).secret_fields
        given = {k: v for k, v in b.config.items()
                 if not (k in secrets and isinstance(v, str) and v.startswith(MASK))}
        config = _validated(service, instance.channel, {**instance.config, **given})
    instance = await do_update_instance(c.rt, c.path_int("id"), name=b.name, enabled=b.enabled, config=config)
    await _after_change(c, instance)
    return channel_view(service, instance)


@api.add("DELETE", "/channels/{id:int}", summary="Remove a channel instance (admins)", auth="admin")
async def channels_delete(c: Call) -> dict[str, Any]:
    failed = await do_delete_instance(c.rt, c.path_int("id"))
    await _service(c).refresh()
    return {"ok": True, "failed_replies": len(failed)}


@api.add("GET", "/widget/channel-links", summary="\"Continue in Telegram / VK\" links for this visitor "
         "(Authorization: Visitor <token>)", response=ChannelLinks, auth="visitor")
async def channel_links(c: Call) -> Any:
    assert c.contact_id is not None
    links = [link for link in await _service(c).link_urls(c.contact_id) if link["channel"] in ("telegram", "vk")]
    return ChannelLinks(links=[ChannelLink.model_validate(link) for link in links])


@api.add("GET", "/messages/{id:int}/original", summary="A channel message as it arrived (full email, edits)",
         response=OriginalView)
async def message_original(c: Call) -> OriginalView:
    async with c.rt.db.read() as s:
        message = await s.get(Message, c.path_int("id"))
        conv = await s.get(Conversation, message.conversation_id) if message else None
    if message is None or message.id is None or conv is None:
        raise NotFound("message_not_found", "no such message")
    return OriginalView(message_id=message.id, text=message.text, original=message.meta.get("original", message.text),
                        subject=message.meta.get("subject"), edits=message.meta.get("edits", []),
                        partly_understood=message.meta.get("partial"), raw=message.meta.get("raw"))


async def webhook(request: Request) -> Response:
    service: ChannelService = request.state.channels
    limit = request.state.rt.settings.max_body_bytes
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return PlainTextResponse("too large", status_code=413)
    try:
        answer = await service.webhook(request.path_params["id"], request.headers, body)
    except Exception:
        # Not stored: the service delivers the update again later.
        log.exception("a channel webhook call could not be stored")
        return PlainTextResponse("temporarily unavailable", status_code=503)
    return PlainTextResponse(answer.body, status_code=answer.status)


def routes() -> list[Route]:
    return [
        Route(PREFIX + "/channels/{id:int}/webhook", webhook, methods=["POST"]),
    ]

