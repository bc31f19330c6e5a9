"""Where the bytes of attachments live: a local directory (the embedded default) or, when
`CHAT_S3_BUCKET` is set, S3-compatible object storage (`file_store_s3.py`) that every server
process shares. Files are addressed by their SHA-256, so a file sent twice is stored once and
a key never names two different contents."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from .attachments import StoredFile, key_of
from .settings import Settings


class FileStore(Protocol):
    async def put(self, data: bytes, content_type: str) -> StoredFile: ...

    async def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when the store has no such file."""

    async def delete(self, keys: Iterable[str]) -> None:
        """Remove these files; a key already gone is no error."""

    async def close(self) -> None: ...


class LocalFileStore:
    """A directory on this machine's disk. Files are written once, atomically, under their
    hash; disk work runs on a thread so hashing and writing megabytes never stall sockets."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, data: bytes, content_type: str) -> StoredFile:
        return await asyncio.to_thread(self._put, data)

    def _put(self, data: bytes) -> StoredFile:
        digest, key = key_of(data)
        target = self.root / key
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)  # readers never see half a file
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredFile(digest, key, len(data))

    def _path(self, key: str) -> Path | None:
        path = (self.root / key).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [p for p in map(self._path, keys) if p is not None]
        def unlink_all() -> None:
            for path in paths:
                path.unlink(missing_ok=True)
        await asyncio.to_thread(unlink_all)

    async def close(self) -> None:
        return None


def open_file_store(settings: Settings) -> FileStore:
    if settings.s3_bucket:
        from .file_store_s3 import S3FileStore  # botocore is loaded only by those who use it
        return S3FileStore(settings)
    return LocalFileStore(settings.effective_attachments_dir)
