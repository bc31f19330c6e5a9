"""A person's data: export everything stored about them, or delete it (admins)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from ..actions.personal_data import do_delete_contact, do_export_contact
from .framework import Auth, Call, Operation, endpoint


class DeletedView(BaseModel):
    deleted: dict[str, int]  # rows removed, per table


async def export_contact(c: Call[None, None]) -> FileResponse:
    contact_id = c.path_int("id")
    archive = await do_export_contact(c.rt, c.me, contact_id)
    return FileResponse(archive, media_type="application/zip", filename=f"contact-{contact_id}.zip",
                        background=BackgroundTask(archive.unlink, missing_ok=True))


async def delete_contact(c: Call[None, None]) -> DeletedView:
    return DeletedView(deleted=await do_delete_contact(c.rt, c.me, c.path_int("id")))


# Staff may call them; the actions themselves refuse everyone but admins (403 admin_only).
routes: list[Operation] = [
    endpoint("GET", "/contacts/{id:int}/export", export_contact,
             summary="Everything stored about a contact, as a zip archive (admins)", auth=Auth.staff),
    endpoint("DELETE", "/contacts/{id:int}", delete_contact,
             summary="Delete a contact and everything of theirs (admins)", response=DeletedView, auth=Auth.staff),
]
