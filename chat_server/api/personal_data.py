"""A person's data: export everything stored about them, or delete it (admins)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from ..actions.personal_data import do_delete_contact, do_export_contact
from .framework import Call, Registry

api = Registry()


class DeletedView(BaseModel):
    deleted: dict[str, int]  # rows removed, per table


@api.add("GET", "/contacts/{id:int}/export", summary="Everything stored about a contact, as a zip archive (admins)")
async def export_contact(c: Call) -> FileResponse:
    contact_id = c.path_int("id")
    archive = await do_export_contact(c.rt, c.me, contact_id)
    return FileResponse(archive, media_type="application/zip", filename=f"contact-{contact_id}.zip",
                        background=BackgroundTask(archive.unlink, missing_ok=True))


@api.add("DELETE", "/contacts/{id:int}", summary="Delete a contact and everything of theirs (admins)", response=DeletedView)
async def delete_contact(c: Call) -> DeletedView:
    return DeletedView(deleted=await do_delete_contact(c.rt, c.me, c.path_int("id")))
