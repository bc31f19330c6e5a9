"""How every REST handler is wrapped: body limits, validation, auth, errors, OpenAPI.

An `Endpoint[BodyT, QueryT]` carries the models that validate a request's body and query;
its handler gets a `Call[BodyT, QueryT]` whose `.body` and `.query` are those models' instances
(None where the endpoint takes none), so the types flow from the route table to the handler.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar, cast, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..actions.api_keys import authenticate_api_key
from ..actions.errors import ActionError, TooMany
from ..actions.visitor_tokens import token_contact
from ..db import is_unavailable
from ..models import Operator, Role
from ..models.ids import MAX_ROW_ID, RowId
from ..models.types import unstorable
from ..reads.operators import authenticate
from ..runtime import Runtime
from ..tokens import visitor_tokens

log = logging.getLogger(__name__)

PREFIX = "/api/v1"

BodyT = TypeVar("BodyT", bound=BaseModel | None)
QueryT = TypeVar("QueryT", bound=BaseModel | None)
B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


class Auth(enum.Enum):
    """Who may call an endpoint."""

    public = "public"
    staff = "staff"  # any logged-in operator (admin, operator, sales)
    admin = "admin"
    visitor = "visitor"  # the widget, by its visitor token
    reader = "reader"  # staff or the visitor: the handler looks at which
    api_key = "api_key"  # the site's backend, by an API key an admin created ("Bearer csk_…")


def error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


@dataclass
class Call(Generic[BodyT, QueryT]):
    """What a handler gets: the request, the runtime, the operator (if any), the parsed body/query."""

    request: Request
    rt: Runtime
    operator: Operator | None
    body: BodyT
    query: QueryT
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


# A handler answers with a model (sent as JSON with the endpoint's status), plain JSON, or a
# response of its own (a file, CSV, an error).
Answer = BaseModel | Mapping[str, object] | Response
Handler = Callable[[Call[BodyT, QueryT]], Awaitable[Answer]]


@dataclass(frozen=True)
class Operation(ABC):
    """An endpoint as the route table and the OpenAPI document see it, whatever its types."""

    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    auth: Auth
    status: int
    # A larger body limit than the server's default (a batch of events); None: the default.
    max_body: int | None

    def route(self) -> Route:
        return Route(PREFIX + self.path, self.serve, methods=[self.method])

    @abstractmethod
    async def serve(self, request: Request) -> Response: ...


@dataclass(frozen=True)
class Endpoint(Operation, Generic[BodyT, QueryT]):
    handler: Handler[BodyT, QueryT]

    async def serve(self, request: Request) -> Response:
        rt: Runtime = request.state.rt
        try:
            return await self._serve(request, rt)
        except ActionError as exc:
            response = error(exc.status, exc.code, exc.message)
            if isinstance(exc, TooMany) and exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("database unavailable", extra={"path": request.url.path, "error": str(exc)[:300]})
            response = error(503, "unavailable", "the server cannot reach its database; nothing was changed, retry shortly")
            response.headers["Retry-After"] = "5"
            return response

    async def _serve(self, request: Request, rt: Runtime) -> Response:
        if any(isinstance(v, int) and not 0 < v <= MAX_ROW_ID for v in request.path_params.values()):
            # No row has such an id, and the database would refuse to even compare with it.
            return error(404, "not_found", "no such object")
        token = credential(request, "bearer")
        operator = None
        contact_id = None
        if self.auth in (Auth.visitor, Auth.reader):
            visitor_token = credential(request, "visitor")
            if visitor_token is not None:
                contact_id = await visitor_contact(rt, visitor_token)
                if contact_id is None:
                    return error(401, "unauthorized", "the visitor token is not valid")
            elif self.auth == Auth.visitor:
                return error(401, "unauthorized", "send 'Authorization: Visitor <token>' (the widget's token)")
        if self.auth == Auth.api_key:
            await authenticate_api_key(rt, token)  # a 401 (ActionError) unless the key is valid
        elif self.auth != Auth.public and contact_id is None:
            operator = await authenticate(rt.db, token) if token else None
            if operator is None:
                return error(401, "unauthorized", "log in and send 'Authorization: Bearer <token>'")
            if self.auth == Auth.admin and operator.role != Role.admin:
                return error(403, "admin_only", "only admins may do this")
        body = query = None
        if self.body is not None:
            raw = await read_body(request, self.max_body or rt.settings.max_body_bytes)
            if isinstance(raw, Response):
                return raw
            try:
                body = self.body.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                return error(422, "invalid_body", "the request body is not valid", details=validation_details(exc))
            if (found := unstorable(body)) is not None:
                return error(422, "invalid_body", "the request body is not valid", details=_refused(found))
        if self.query is not None:
            try:
                query = self.query.model_validate(dict(request.query_params))
            except ValidationError as exc:
                return error(422, "invalid_query", "the query parameters are not valid", details=validation_details(exc))
            if (found := unstorable(query)) is not None:
                return error(422, "invalid_query", "the query parameters are not valid", details=_refused(found))
        # `endpoint` ties each type argument to its model (or to None where there is none), so
        # what was parsed here is what the handler's Call declares.
        call = Call(request, rt, operator, cast(BodyT, body), cast(QueryT, query), token, contact_id)
        result = await self.handler(call)
        if isinstance(result, Response):
            return result
        if isinstance(result, BaseModel):
            return Response(result.model_dump_json(), status_code=self.status, media_type="application/json")
        return JSONResponse(result, status_code=self.status)


@overload
def endpoint(method: str, path: str, handler: Handler[B, Q], *, summary: str, body: type[B], query: type[Q],
             response: type[BaseModel] | None = None, auth: Auth = Auth.staff, status: int = 200,
             max_body: int | None = None) -> Endpoint[B, Q]: ...
@overload
def endpoint(method: str, path: str, handler: Handler[B, None], *, summary: str, body: type[B],
             response: type[BaseModel] | None = None, auth: Auth = Auth.staff, status: int = 200,
             max_body: int | None = None) -> Endpoint[B, None]: ...
@overload
def endpoint(method: str, path: str, handler: Handler[None, Q], *, summary: str, query: type[Q],
             response: type[BaseModel] | None = None, auth: Auth = Auth.staff, status: int = 200,
             max_body: int | None = None) -> Endpoint[None, Q]: ...
@overload
def endpoint(method: str, path: str, handler: Handler[None, None], *, summary: str,
             response: type[BaseModel] | None = None, auth: Auth = Auth.staff, status: int = 200,
             max_body: int | None = None) -> Endpoint[None, None]: ...
def endpoint(method: str, path: str, handler: Handler[BodyT, QueryT], *, summary: str,
             body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: type[BaseModel] | None = None, auth: Auth = Auth.staff, status: int = 200,
             max_body: int | None = None) -> Endpoint[BodyT, QueryT]:
    """One route of the API (under /api/v1). Staff only unless `auth` says otherwise."""
    return Endpoint(method, path, summary, body, query, response, auth, status, max_body, handler)


def credential(request: Request, kind: str) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == kind and token.strip():
        return token.strip()[:500]
    return None


async def visitor_contact(rt: Runtime, token: str) -> int | None:
    """The contact behind a widget's unexpired, unrevoked visitor token (after a merge: the survivor)."""
    claim = visitor_tokens(rt.settings).claim(token)
    return await token_contact(rt, claim) if claim is not None else None


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The raw body, or a 413 answer as soon as it is known to pass `limit` bytes."""
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


class ErrorDetail(TypedDict):
    loc: list[str]
    msg: str
    type: str


def validation_details(exc: ValidationError) -> list[ErrorDetail]:
    # Only what helps fix the request; never echo the (possibly huge) input back.
    return [
        ErrorDetail(loc=[str(p) for p in e["loc"]], msg=e["msg"], type=e["type"])
        for e in exc.errors(include_url=False, include_input=False, include_context=False)[:20]
    ]


def _refused(found: tuple[tuple[str, ...], str]) -> list[ErrorDetail]:
    # Text the database cannot store (NUL): refused for every field alike, before any query.
    where, why = found
    return [ErrorDetail(loc=list(where), msg=f"Value error, {why}", type="value_error")]


ROW_ID_SCHEMA = TypeAdapter(RowId).json_schema()


def openapi_document(operations: list[Operation]) -> dict[str, Any]:
    """OpenAPI 3.1 from the same models that validate the requests."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for ep in operations:
        op: dict[str, Any] = {"summary": ep.summary, "responses": {}}
        path = PREFIX + ep.path.replace(":int}", "}")
        params = [
            {"name": name.split(":")[0], "in": "path", "required": True,
             # Ids out of range are answered 404 before anything else (see _serve).
             "schema": ROW_ID_SCHEMA if name.endswith(":int") else {"type": "string"}}
            for name in _path_names(ep.path)
        ]
        if ep.query is not None:
            params += _query_parameters(ep.query)
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(ep.body)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": ref(ep.response)}}
        op["responses"][str(ep.status)] = ok
        op["responses"]["4XX"] = {"description": "A clear error: {\"error\": {\"code\", \"message\"}}"}
        if ep.auth == Auth.visitor:
            op["security"] = [{"visitor": []}]
        elif ep.auth == Auth.reader:
            op["security"] = [{"bearer": []}, {"visitor": []}]
        elif ep.auth == Auth.api_key:
            op["security"] = [{"api_key": []}]
        elif ep.auth != Auth.public:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Chat server API", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "api_key": {"type": "http", "scheme": "bearer",
                        "description": "an API key (csk_…) an admin created in the inbox; for the site's backend"},
            "visitor": {"type": "apiKey", "in": "header", "name": "Authorization",
                        "description": "'Visitor <token>': the token the widget got in `welcome`"},
        }},
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each query parameter with what the server enforces on it (pattern, enum, length), taken
    from the model that validates it; a parameter may be left out unless it is required."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    params = []
    for name, field in model.model_fields.items():
        prop = dict(schema["properties"][name])
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:  # a choice of kinds ("me" / "none" or an id): keep every one
            prop["anyOf"] = options
        if "$ref" in prop:
            prop.update(defs[prop.pop("$ref").rsplit("/", 1)[-1]])
        description = prop.pop("description", "") or field.description or ""
        prop.pop("title", None)
        if prop.get("default") is None:
            prop.pop("default", None)
        params.append({"name": name, "in": "query", "required": field.is_required(), "schema": prop,
                       "description": description})
    return params


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
