"""Attachments in S3-compatible object storage (MinIO in docker-compose.yml; AWS S3, Yandex
Object Storage and others by endpoint URL), through aiobotocore: the AWS SDK's own request
signing and retries, without blocking the event loop. One client per process, opened on first
use; the bucket is created then if it does not exist yet, so a fresh MinIO works on day one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from .attachments import StoredFile, key_of
from .settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

MISSING = {"NoSuchKey", "404", "NotFound"}
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


class S3FileStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self._client: S3Client | None = None
        self._stack = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    async def _open(self) -> S3Client:
        async with self._opening:
            if self._client is None:
                s = self.settings
                client = await self._stack.enter_async_context(get_session().create_client(
                    "s3", endpoint_url=s.s3_endpoint_url or None, region_name=s.s3_region,
                    aws_access_key_id=s.s3_access_key_id or None,
                    aws_secret_access_key=s.s3_secret_access_key or None,
                    # MinIO and most self-hosted stores address buckets by path, not by host name.
                    config=AioConfig(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30,
                                  retries={"max_attempts": 3, "mode": "standard"}),
                ))
                await self._ensure_bucket(client)
                self._client = client
            return self._client

    async def _ensure_bucket(self, client: S3Client) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in MISSING:
                raise
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                await client.create_bucket(Bucket=self.bucket)  # another replica may win the race

    async def put(self, data: bytes, content_type: str) -> StoredFile:
        client = await self._open()
        digest, key = await asyncio.to_thread(key_of, data)
        await client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type)
        return StoredFile(digest, key, len(data))

    async def get(self, key: str) -> bytes | None:
        client = await self._open()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def delete(self, keys: Iterable[str]) -> None:
        wanted = [self.prefix + k for k in keys]
        if not wanted:
            return
        client = await self._open()
        for start in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[start:start + DELETE_BATCH]
            await client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
