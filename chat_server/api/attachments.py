"""Uploading and downloading attachments. Uploads are the raw file as the request body
(`Content-Type` is the file's type, `?name=` its file name): no multipart parsing, and the
size limit holds while the body streams in."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import Response

from ..actions.attachments import do_store_attachment, readable_attachment
from ..actions.messages import check_can_write
from ..attachments import INLINE_TYPES, safe_name
from .framework import Auth, Call, Operation, endpoint, error, read_body


class UploadQuery(BaseModel):
    # A browser's file name: control characters (NUL too) are dropped, not refused.
    name: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(safe_name)] = "file"


class AttachmentInfo(BaseModel):
    id: int
    name: str
    content_type: str
    size: int
    url: str


async def _upload(c: Call[None, UploadQuery], *, contact_id: int | None, operator_id: int | None) -> Response | AttachmentInfo:
    # Room for the limit itself; the exact check is on the bytes.
    raw = await read_body(c.request, c.rt.settings.max_attachment_bytes)
    if isinstance(raw, Response):
        return error(413, "file_too_large", f"files are at most {c.rt.settings.max_attachment_bytes} bytes")
    stored = await do_store_attachment(c.rt, raw, c.query.name, c.request.headers.get("content-type", ""),
                                       contact_id=contact_id, operator_id=operator_id)
    return AttachmentInfo.model_validate(stored)


async def visitor_upload(c: Call[None, UploadQuery]) -> Response | AttachmentInfo:
    return await _upload(c, contact_id=c.contact_id, operator_id=None)


async def operator_upload(c: Call[None, UploadQuery]) -> Response | AttachmentInfo:
    check_can_write(c.me)
    return await _upload(c, contact_id=None, operator_id=c.me.id)


async def download(c: Call[None, None]) -> Response:
    row = await readable_attachment(c.rt, c.path_int("id"), staff=c.operator is not None, contact_id=c.contact_id)
    etag = f'"{row.sha256}"'  # the content's hash: a file under one id never changes
    headers = {
        "ETag": etag,
        "Content-Disposition": _disposition("inline" if row.content_type in INLINE_TYPES else "attachment", row.name),
        "X-Content-Type-Options": "nosniff",
        # Even if a browser decided to render it, nothing in it may run or load.
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        "Cache-Control": "private, max-age=86400",
    }
    if c.request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = await c.rt.files.get(row.path)
    if data is None:
        return error(404, "attachment_not_found", "the file is gone from storage")
    media_type = row.content_type + ("; charset=utf-8" if row.content_type.startswith("text/") else "")
    return Response(data, media_type=media_type, headers=headers)


def _disposition(kind: str, filename: str) -> str:
    """RFC 6266: a plain quoted name when it is ASCII-safe, else the UTF-8 `filename*` form."""
    quoted = quote(filename)
    return f'{kind}; filename="{filename}"' if quoted == filename else f"{kind}; filename*=utf-8''{quoted}"


routes: list[Operation] = [
    endpoint("POST", "/widget/attachments", visitor_upload, summary="A visitor uploads a file (raw body, ?name=)",
             query=UploadQuery, response=AttachmentInfo, auth=Auth.visitor, status=201),
    endpoint("POST", "/attachments", operator_upload, summary="An operator uploads a file (raw body, ?name=)",
             query=UploadQuery, response=AttachmentInfo, status=201),
    endpoint("GET", "/attachments/{id:int}/{name}", download,
             summary="Download a file (staff, or the visitor it belongs to)", auth=Auth.reader),
]
