"""Where attachments live: the local directory and S3-compatible object storage keep the same
promises, and with object storage two server processes on separate disks share every file —
an upload through one is downloaded through the other, and deleting the person removes their
files from the store."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session

from chat_server.file_store import FileStore, LocalFileStore
from chat_server.file_store_s3 import S3FileStore
from chat_server.settings import Settings
from tests.harness import ChatServer, api, login, visitor
from tests.services import PostgresServer, RedisServer, S3Server

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300
KEYS = {"CHAT_S3_ACCESS_KEY_ID": "test-key", "CHAT_S3_SECRET_ACCESS_KEY": "test-secret"}


def s3_settings(s3: S3Server, bucket: str) -> Settings:
    return Settings(secret_key="test", s3_bucket=bucket, s3_endpoint_url=s3.url,
                    s3_access_key_id="test-key", s3_secret_access_key="test-secret")


async def object_keys(s3: S3Server, bucket: str) -> list[str]:
    """What is in the bucket, asked of the server directly rather than through our store."""
    async with get_session().create_client(
        "s3", endpoint_url=s3.url, region_name="us-east-1",
        aws_access_key_id="test-key", aws_secret_access_key="test-secret",
    ) as client:
        listing = await client.list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStore]:
    if request.param == "local":
        chosen: FileStore = LocalFileStore(tmp_path / "files")
    else:
        chosen = S3FileStore(s3_settings(request.getfixturevalue("s3_server"), f"b{uuid.uuid4().hex[:12]}"))
    try:
        yield chosen
    finally:
        await chosen.close()


async def test_a_file_is_kept_under_its_hash_and_removed_once_asked(store: FileStore) -> None:
    stored = await store.put(PNG, "image/png")
    digest = hashlib.sha256(PNG).hexdigest()
    assert (stored.sha256, stored.path, stored.size) == (digest, f"{digest[:2]}/{digest}", len(PNG))
    assert await store.get(stored.path) == PNG
    assert (await store.put(PNG, "image/png")).path == stored.path  # the same bytes: one file
    other = await store.put(b"other text", "text/plain")
    assert other.path != stored.path
    await store.delete([stored.path])
    assert await store.get(stored.path) is None
    assert await store.get(other.path) == b"other text"  # only what was named went
    await store.delete([stored.path, "00/" + "0" * 64])  # already gone, never there: no error
    assert await store.get("00/" + "0" * 64) is None


async def test_a_key_never_reaches_outside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not yours")
    store = LocalFileStore(tmp_path / "files")
    assert await store.get("../secret.txt") is None
    await store.delete(["../secret.txt"])
    assert (tmp_path / "secret.txt").exists()


async def test_a_fresh_object_store_gets_its_bucket_on_first_use(s3_server: S3Server) -> None:
    bucket = f"fresh{uuid.uuid4().hex[:12]}"
    first, second = S3FileStore(s3_settings(s3_server, bucket)), S3FileStore(s3_settings(s3_server, bucket))
    try:
        stored = await first.put(PNG, "image/png")
        assert await second.get(stored.path) == PNG  # the second finds the bucket the first made
        assert await object_keys(s3_server, bucket) == ["attachments/" + stored.path]
    finally:
        await first.close()
        await second.close()


@pytest.fixture(scope="module")
def replicas(postgres: PostgresServer, redis_server: RedisServer, s3_server: S3Server,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, ChatServer, str]]:
    database_url = postgres.create_database(f"files_{uuid.uuid4().hex[:8]}")
    bucket = f"replicas{uuid.uuid4().hex[:8]}"
    env = {**KEYS, "CHAT_S3_BUCKET": bucket, "CHAT_S3_ENDPOINT_URL": s3_server.url}
    # Separate data directories: nothing but the object store is shared for files.
    a = ChatServer(tmp_path_factory.mktemp("files-a"), database_url, redis_url=redis_server.url, **env)
    b = ChatServer(tmp_path_factory.mktemp("files-b"), database_url, redis_url=redis_server.url,
                   CHAT_AUTO_MIGRATE="false", **env)
    a.start()
    try:
        b.start()
        yield a, b, bucket
    finally:
        b.stop()
        a.stop()


async def test_an_upload_through_one_replica_is_downloaded_through_the_other(
    replicas: tuple[ChatServer, ChatServer, str], s3_server: S3Server,
) -> None:
    a, b, bucket = replicas
    v, welcome = await visitor(a)
    async with httpx.AsyncClient(base_url=a.http + "/api/v1", timeout=10,
                                 headers={"authorization": f"Visitor {welcome['token']}"}) as widget:
        r = await widget.post("/widget/attachments", params={"name": "счёт.png"}, content=PNG,
                              headers={"content-type": "image/png"})
        assert r.status_code == 201, r.text
        info = r.json()
    await v.send(type="message.send", client_msg_id=uuid.uuid4().hex, text="the invoice", attachment_ids=[info["id"]])
    await v.expect("ack")
    digest = hashlib.sha256(PNG).hexdigest()
    assert await object_keys(s3_server, bucket) == [f"attachments/{digest[:2]}/{digest}"]
    assert not any((a.tmp / "data").rglob(digest)) and not any((b.tmp / "data").rglob(digest))

    token = await login(b)
    async with api(b, token) as staff:
        r = await staff.get(info["url"].removeprefix("/api/v1"))
        assert r.status_code == 200 and r.content == PNG
        assert r.headers["content-type"] == "image/png" and r.headers["etag"] == f'"{digest}"'
        assert r.headers["content-disposition"] == "inline; filename*=utf-8''%D1%81%D1%87%D1%91%D1%82.png"
        again = await staff.get(info["url"].removeprefix("/api/v1"), headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

        [conversation] = (await staff.get("/conversations")).json()["items"]  # a fresh database
        contact_id = conversation["contact"]["id"]
        r = await staff.delete(f"/contacts/{contact_id}")
        assert r.status_code == 200, r.text
        assert await object_keys(s3_server, bucket) == []  # gone from the store once the rows went
        assert (await staff.get(info["url"].removeprefix("/api/v1"))).status_code == 404
