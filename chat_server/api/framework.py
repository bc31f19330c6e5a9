"""How every REST handler is wrapped: body limits, validation, auth, errors, OpenAPI."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..actions.contacts import find_contact
from ..actions.errors import ActionError
from ..actions.operators import authenticate
from ..models import IdentityKind, Operator, Role
from ..runtime import Runtime
from ..tokens import VisitorTokens

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # the largest BIGINT: ids past it cannot exist


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


@dataclass
class Call:
    """What a handler gets: the request, the runtime, the operator (if any), the parsed body/query."""

    request: Request
    rt: Runtime
    operator: Operator | None
    body: Any
    query: Any
    token: str | None
    # The visitor's contact, on endpoints the widget calls with "Authorization: Visitor <token>".
    contact_id: int | None = None

    @property
    def me(self) -> Operator:
        assert self.operator is not None
        return self.operator

    def path_int(self, name: str) -> int:
        value = self.request.path_params[name]
        assert isinstance(value, int)
        return value


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    # None (public), "operator" (any staff), "admin", "visitor" (the widget's token),
    # "reader" (staff or visitor: the handler looks at which)
    auth: str | None
    status: int = 200
    # A larger body limit than the server's default (a batch of events).
    max_body: int | None = None

    def route(self, prefix: str) -> Route:
        return Route(prefix + self.path, self.serve, methods=[self.method])

    async def serve(self, request: Request) -> Response:
        rt: Runtime = request.state.rt
        try:
            return await self._serve(request, rt)
        except ActionError as exc:
            return error(exc.status, exc.code, exc.message)

    async def _serve(self, request: Request, rt: Runtime) -> Response:
        if any(isinstance(v, int) and not 0 < v <= MAX_ID for v in request.path_params.values()):
            # No row has such an id, and the database would refuse to even compare with it.
            return error(404, "not_found", "no such object")
        token = _credential(request, "bearer")
        operator = None
        contact_id = None
        if self.auth in ("visitor", "reader"):
            visitor_token = _credential(request, "visitor")
            if visitor_token is not None:
                contact_id = await visitor_contact(rt, visitor_token)
                if contact_id is None:
                    return error(401, "unauthorized", "the visitor token is not valid")
            elif self.auth == "visitor":
                return error(401, "unauthorized", "send 'Authorization: Visitor <token>' (the widget's token)")
        if self.auth is not None and contact_id is None:
            operator = await authenticate(rt, token) if token else None
            if operator is None:
                return error(401, "unauthorized", "log in and send 'Authorization: Bearer <token>'")
            if self.auth == "admin" and operator.role != Role.admin:
                return error(403, "admin_only", "only admins may do this")
        body = query = None
        if self.body is not None:
            raw = await read_body(request, self.max_body or rt.settings.max_body_bytes)
            if isinstance(raw, Response):
                return raw
            try:
                body = self.body.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                return error(422, "invalid_body", "the request body is not valid", details=_details(exc))
        if self.query is not None:
            try:
                query = self.query.model_validate(dict(request.query_params))
            except ValidationError as exc:
                return error(422, "invalid_query", "the query parameters are not valid", details=_details(exc))
        result = await self.handler(Call(request, rt, operator, body, query, token, contact_id))
        if isinstance(result, Response):
            return result
        if isinstance(result, BaseModel):
            return Response(result.model_dump_json(), status_code=self.status, media_type="application/json")
        return JSONResponse(result, status_code=self.status)


def _credential(request: Request, kind: str) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == kind and token.strip():
        return token.strip()[:500]
    return None


async def visitor_contact(rt: Runtime, token: str) -> int | None:
    """The contact behind a widget's visitor token (after a merge: the survivor)."""
    visitor_id = VisitorTokens(rt.settings.effective_secret_key).read(token)
    if visitor_id is None:
        return None
    async with rt.db.read() as s:
        contact = await find_contact(s, IdentityKind.visitor, visitor_id)
    return contact.id if contact is not None else None


async def read_body(request: Request, limit: int) -> bytes | Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return error(413, "body_too_large", f"request bodies are at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return error(413, "body_too_large", f"request bodies are at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    # Only what helps fix the request; never echo the (possibly huge) input back.
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)[:20]
    ]


class Registry:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def add(
        self, method: str, path: str, *, summary: str, body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
        auth: str | None = "operator", status: int = 200, max_body: int | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, summary, body, query, response, auth, status, max_body))
            return handler
        return register


def openapi_document(endpoints: list[Endpoint], prefix: str) -> dict[str, Any]:
    """OpenAPI 3.1 from the same models that validate the requests."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "responses": {}}
        path = prefix + ep.path.replace(":int}", "}")
        params = [
            {"name": name.split(":")[0], "in": "path", "required": True,
             "schema": {"type": "integer" if name.endswith(":int") else "string"}}
            for name in _path_names(ep.path)
        ]
        if ep.query is not None:
            for name, field in ep.query.model_fields.items():
                params.append({"name": name, "in": "query", "required": field.is_required(),
                               "schema": {"type": "string"}, "description": field.description or ""})
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(ep.body)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": ref(ep.response)}}
        op["responses"][str(ep.status)] = ok
        op["responses"]["4XX"] = {"description": "A clear error: {\"error\": {\"code\", \"message\"}}"}
        if ep.auth == "visitor":
            op["security"] = [{"visitor": []}]
        elif ep.auth == "reader":
            op["security"] = [{"bearer": []}, {"visitor": []}]
        elif ep.auth is not None:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Chat server API", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "visitor": {"type": "apiKey", "in": "header", "name": "Authorization",
                        "description": "'Visitor <token>': the token the widget got in `welcome`"},
        }},
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
