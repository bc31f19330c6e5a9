"""REST for API keys (admins): create (the secret is in this one answer), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ..actions.api_keys import do_create_api_key, do_revoke_api_key
from ..behaviour.filters import Storable
from ..models import ApiKey
from ..reads import api_keys as reads
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint


class ApiKeyBody(sc.Body):
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]


class ApiKeyView(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyView):
    secret: str  # shown here once; only its hash is stored


class ApiKeyList(BaseModel):
    items: list[ApiKeyView]


def view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView.model_validate(key, from_attributes=True)

async def list_keys(c: Call[None, None]) -> ApiKeyList:
    rows = await reads.api_keys(c.rt.db)
    return ApiKeyList(items=[view(k) for k in rows])

async def create_key(c: Call[ApiKeyBody, None]) -> ApiKeyCreated:
    key, secret = await do_create_api_key(c.rt, c.me, c.body.name)
    return ApiKeyCreated(**view(key).model_dump(), secret=secret)

async def revoke_key(c: Call[None, None]) -> ApiKeyView:
    return view(await do_revoke_api_key(c.rt, c.me, c.path_int("id")))


routes: list[Operation] = [
    endpoint("GET", "/api-keys", list_keys,
             summary="API keys (admins): names, first characters, last use; never the secret",
             response=ApiKeyList, auth=Auth.admin),
    endpoint("POST", "/api-keys", create_key,
             summary="Create an API key (admins); the secret is shown in this answer only",
             body=ApiKeyBody, response=ApiKeyCreated, auth=Auth.admin, status=201),
    endpoint("DELETE", "/api-keys/{id:int}", revoke_key, summary="Revoke an API key (admins)",
             response=ApiKeyView, auth=Auth.admin),
]
