"""Channel settings (admins), the channels' webhooks and the widget's "continue in" links."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..actions.channels import do_create_instance, do_delete_instance, do_update_instance
from ..actions.errors import ActionError, NotFound
from ..actions.validation import check_properties
from ..channels import ChannelService
from ..models import ChannelInstance
from ..models.ids import MAX_ROW_ID
from ..reads.channels import Outgoing, find_instance, list_instances, outgoing
from ..runtime import Runtime
from .framework import PREFIX, Auth, Call, Operation, endpoint, error, read_body, validation_details
from .schemas import Body

log = logging.getLogger(__name__)

MASK = "••••"


class ChannelCreateBody(Body):
    channel: Literal["telegram", "vk", "email"]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    enabled: bool = True
    config: dict[str, Any]
    # Ask the service whether the credentials work before saving (false: save unchecked,
    # say to prepare a mailbox whose server is not up yet).
    check: bool = True


class ChannelUpdateBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    # false pauses the instance (no polling, webhook calls refused, no new replies routed to it), true resumes it.
    enabled: bool | None = None
    # Merged over the stored settings; a secret left out (or sent back masked) is kept.
    config: dict[str, Any] | None = None
    # Changed settings are checked against the service before they are saved.
    check: bool = True


class ChannelView(BaseModel):
    id: int
    channel: str
    name: str
    enabled: bool
    config: dict[str, Any]
    webhook_path: str
    # Where polling stopped (Telegram offset, VK ts, IMAP uidvalidity:uid).
    cursor: str | None
    # paused: switched off; failing: the last attempt to reach the service (or to send a reply)
    # failed; connected otherwise.
    state: Literal["connected", "paused", "failing"]
    last_update_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    # Replies waiting to leave through this instance.
    queue_length: int


class ChannelList(BaseModel):
    items: list[ChannelView]


class ChannelLink(BaseModel):
    channel: Literal["telegram", "vk"]
    url: str


class ChannelLinks(BaseModel):
    links: list[ChannelLink]


def _service(request: Request) -> ChannelService:
    service: ChannelService = request.state.channels
    return service


def mask(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    return MASK + value[-4:] if len(value) >= 12 else MASK


def channel_view(service: ChannelService, instance: ChannelInstance, out: Outgoing | None = None) -> ChannelView:
    assert instance.id is not None
    out = out or Outgoing()
    secrets = service.adapter(instance.channel).secret_fields
    config = {k: mask(v) if k in secrets else v for k, v in instance.config.items()}
    error, error_at = instance.last_error, instance.last_error_at
    polling_failed = error_at is not None and (instance.last_ok_at is None or error_at >= instance.last_ok_at)
    if not polling_failed and out.retry_error:
        error, error_at = f"sending: {out.retry_error}", None
    state: Literal["connected", "paused", "failing"] = (
        "paused" if not instance.enabled else "failing" if polling_failed or out.retry_error else "connected")
    return ChannelView(id=instance.id, channel=instance.channel, name=instance.name, enabled=instance.enabled,
                       config=config, webhook_path=f"{PREFIX}/channels/{instance.id}/webhook",
                       cursor=instance.cursor, state=state, last_update_at=instance.last_update_at,
                       last_error=error, last_error_at=error_at, queue_length=out.queued)


async def _view(rt: Runtime, service: ChannelService, instance: ChannelInstance) -> ChannelView:
    assert instance.id is not None
    return channel_view(service, instance, (await outgoing(rt.db, [instance.id])).get(instance.id))


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
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in validation_details(exc))
        super().__init__("invalid_config", f"the channel settings are not valid: {detail}"[:1000])


async def _after_change(service: ChannelService, instance: ChannelInstance) -> None:
    await service.refresh()
    public_url = instance.config.get("public_url")
    if instance.enabled and instance.config.get("mode") == "webhook" and public_url:
        try:
            await service.register(instance, public_url)
        except Exception as exc:
            assert instance.id is not None
            service.report(instance.id, f"the webhook could not be registered: {exc}")  # shown as failing
            raise ActionError("webhook_registration_failed",
                              f"saved, but the webhook could not be registered: {exc}"[:500]) from exc


async def channels_list(c: Call[None, None]) -> ChannelList:
    service = _service(c.request)
    instances = await list_instances(c.rt.db)
    out = await outgoing(c.rt.db, [i.id for i in instances if i.id is not None])
    return ChannelList(items=[channel_view(service, i, out.get(i.id or 0)) for i in instances])


async def _checked(service: ChannelService, channel: str, config: dict[str, Any]) -> dict[str, Any]:
    learned = await service.check(channel, config)
    return _validated(service, channel, {**config, **learned}) if learned else config


async def channels_create(c: Call[ChannelCreateBody, None]) -> ChannelView:
    b = c.body
    service = _service(c.request)
    config = _validated(service, b.channel, b.config)
    if b.check:
        config = await _checked(service, b.channel, config)
    instance = await do_create_instance(c.rt, b.channel, b.name, config)
    if not b.enabled:
        assert instance.id is not None
        instance = await do_update_instance(c.rt, instance.id, enabled=False)
    await _after_change(service, instance)
    return await _view(c.rt, service, instance)


async def channels_get(c: Call[None, None]) -> ChannelView:
    return await _view(c.rt, _service(c.request), await _instance(c.rt, c.path_int("id")))


async def channels_update(c: Call[ChannelUpdateBody, None]) -> ChannelView:
    b = c.body
    service = _service(c.request)
    instance = await _instance(c.rt, c.path_int("id"))
    config = None
    if b.config is not None:
        secrets = service.adapter(instance.channel).secret_fields
        given = {k: v for k, v in b.config.items()
                 if not (k in secrets and isinstance(v, str) and v.startswith(MASK))}
        config = _validated(service, instance.channel, {**instance.config, **given})
        if config == instance.config:
            config = None  # nothing changed: nothing to check, the loop keeps running
        elif b.check:
            config = await _checked(service, instance.channel, config)
    instance = await do_update_instance(c.rt, c.path_int("id"), name=b.name, enabled=b.enabled, config=config)
    await _after_change(service, instance)
    return await _view(c.rt, service, instance)


async def channels_delete(c: Call[None, None]) -> dict[str, int | bool]:
    failed = await do_delete_instance(c.rt, c.path_int("id"))
    await _service(c.request).refresh()
    return {"ok": True, "failed_replies": len(failed)}


async def channel_links(c: Call[None, None]) -> ChannelLinks:
    assert c.contact_id is not None
    links = [link for link in await _service(c.request).link_urls(c.contact_id) if link["channel"] in ("telegram", "vk")]
    return ChannelLinks(links=[ChannelLink.model_validate(link) for link in links])


async def webhook(request: Request) -> Response:
    rt: Runtime = request.state.rt
    if not 0 < request.path_params["id"] <= MAX_ROW_ID:
        return error(404, "not_found", "no such channel")  # a number no row can have
    body = await read_body(request, rt.settings.max_body_bytes)
    if isinstance(body, Response):
        return body
    try:
        answer = await _service(request).webhook(request.path_params["id"], request.headers, body)
    except Exception:
        # Not stored: the service delivers the update again later.
        log.exception("a channel webhook call could not be stored")
        return PlainTextResponse("temporarily unavailable", status_code=503)
    return PlainTextResponse(answer.body, status_code=answer.status)


async def _instance(rt: Runtime, instance_id: int) -> ChannelInstance:
    instance = await find_instance(rt.db, instance_id)
    if instance is None:
        raise NotFound("channel_not_found", "no such channel instance")
    return instance


# Services call the webhook with their own payloads and credentials, so it is a plain route
# outside the API's registry and its OpenAPI document.
webhook_route = Route(PREFIX + "/channels/{id:int}/webhook", webhook, methods=["POST"])

routes: list[Operation] = [
    endpoint("GET", "/channels", channels_list, summary="Channel instances (admins); secrets masked",
             response=ChannelList, auth=Auth.admin),
    endpoint("POST", "/channels", channels_create, summary="Add a bot, community or mailbox (admins)",
             body=ChannelCreateBody, response=ChannelView, auth=Auth.admin, status=201),
    endpoint("GET", "/channels/{id:int}", channels_get, summary="One channel instance (admins)", response=ChannelView,
             auth=Auth.admin),
    endpoint("PATCH", "/channels/{id:int}", channels_update, summary="Change a channel instance (admins)",
             body=ChannelUpdateBody, response=ChannelView, auth=Auth.admin),
    endpoint("DELETE", "/channels/{id:int}", channels_delete, summary="Remove a channel instance (admins)",
             auth=Auth.admin),
    endpoint("GET", "/widget/channel-links", channel_links, summary="\"Continue in Telegram / VK\" links for this visitor "
             "(Authorization: Visitor <token>)", response=ChannelLinks, auth=Auth.visitor),
]
