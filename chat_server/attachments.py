"""What people may send as files (size, content types, names). Where the bytes live is
`file_store.py`; rows describing them live in `models.attachment`; recording an upload is an
action (`actions/attachments.py`, `do_store_attachment`). This module knows nothing of the
database or the store."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
DOCUMENT_TYPES = {
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/rtf",
    "text/plain",
    "text/csv",
    "application/zip",
}
AUDIO_TYPES = {"audio/ogg", "audio/mpeg", "audio/mp4", "audio/webm", "audio/wav", "audio/x-wav", "audio/aac",
               "audio/x-m4a", "audio/opus"}
ALLOWED_TYPES = IMAGE_TYPES | DOCUMENT_TYPES | AUDIO_TYPES
# Shown in the browser rather than downloaded. Never HTML or SVG: a file someone uploaded
# must not run script on our origin.
INLINE_TYPES = IMAGE_TYPES | AUDIO_TYPES | {"text/plain"}

# Images are checked by their first bytes, so a page labelled "image/png" stays a download.
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class AttachmentRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalise_content_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def safe_name(filename: str) -> str:
    """A file name fit for a header and a URL: no path, no control characters, bounded."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>|*?:')
    name = name.strip().strip(".") or "file"
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:140] + dot + ext[:9]) if dot and len(ext) < 10 else name[:150]
    return name


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    path: str  # the file's key in the store: "ab/abcdef…" (its hash), whichever store holds it
    size: int


def key_of(data: bytes) -> tuple[str, str]:
    """A file's SHA-256 and its key in any store: a key never names two different contents."""
    digest = hashlib.sha256(data).hexdigest()
    return digest, f"{digest[:2]}/{digest}"


def check_file(data: bytes, content_type: str, max_bytes: int) -> str:
    """The normalised content type, or AttachmentRejected saying why not."""
    kind = normalise_content_type(content_type)
    if kind not in ALLOWED_TYPES:
        raise AttachmentRejected("unsupported_type", f"files of type {kind or 'unknown'!r} cannot be sent")
    if not data:
        raise AttachmentRejected("empty_file", "the file is empty")
    if len(data) > max_bytes:
        raise AttachmentRejected("file_too_large", f"files are at most {max_bytes} bytes")
    magic = _MAGIC.get(kind)
    if magic and not data.startswith(magic):
        raise AttachmentRejected("not_an_image", f"the file is not a {kind} image")
    return kind
