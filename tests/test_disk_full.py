"""The disk under the embedded database fills up while visitors write: what cannot be stored is
refused clearly (`unavailable`, never an `ack`), nothing acknowledged is lost, and once space
returns the same message is stored, once, without restarting the server.

The database and the attachments live on a small tmpfs of their own, filled by a file, so the
server meets a real ENOSPC (SQLite's "database or disk is full")."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.harness import ChatServer, api, login, visitor

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 20_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write until the disk refuses another byte."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def on_small_disk(small_disk: Path, tmp_path: Path) -> ChatServer:
    """A server whose database and files live on the small volume."""
    return ChatServer(tmp_path, f"sqlite+aiosqlite:///{small_disk / 'chat.db'}", CHAT_DATA_DIR=str(small_disk / "data"))


async def test_a_full_disk_refuses_clearly_and_recovers_when_space_returns(small_disk: Path, tmp_path: Path) -> None:
    server = on_small_disk(small_disk, tmp_path)
    server.start()
    try:
        token = await login(server)
        v, welcome = await visitor(server)
        await v.send(type="message.send", client_msg_id="m0", text="before the disk filled")
        await v.expect("ack", client_msg_id="m0")

        filler = await anyio.to_thread.run_sync(fill, small_disk)
        # Space already held by the database's log is reused, so some writes still fit; keep
        # writing until one needs a new block.
        acked = ["m0"]
        refused = None
        for n in range(1, 500):
            ref = f"m{n}"
            await v.send(type="message.send", client_msg_id=ref, text=f"message {n} " + "x" * 3000)
            frame = await v.recv(30)
            while frame["type"] not in ("ack", "error"):
                frame = await v.recv(30)
            if frame["type"] == "error":
                assert (frame["code"], frame["ref"]) == ("unavailable", ref), frame
                refused = ref
                break
            acked.append(frame["client_msg_id"])
        assert refused is not None, "the full disk never refused a write"

        async with httpx.AsyncClient(base_url=server.http + "/api/v1", timeout=30,
                                     headers={"authorization": f"Visitor {welcome['token']}"}) as widget:
            r = await widget.post("/widget/attachments", params={"name": "photo.png"}, content=PNG,
                                  headers={"content-type": "image/png"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text

        filler.unlink()
        # The widget sends again what was not acknowledged, as it does after any error.
        with anyio.fail_after(60):
            while True:
                await v.send(type="message.send", client_msg_id=refused, text="after space returned")
                frame = await v.recv(30)
                if frame["type"] == "ack" and frame["client_msg_id"] == refused:
                    break
                await anyio.sleep(0.5)
        async with api(server, token) as http:
            [conversation] = (await http.get("/conversations")).json()["items"]
            thread: list[dict[str, object]] = []
            before = None
            while True:
                page = (await http.get(f"/conversations/{conversation['id']}/messages",
                                       params={"limit": 100, **({"before_seq": before} if before else {})})).json()
                thread = page["items"] + thread
                if len(page["items"]) < 100:
                    break
                before = page["items"][0]["seq"]
        # Everything acknowledged is there once, in order, then the message refused meanwhile.
        assert [m["client_msg_id"] for m in thread] == [*acked, refused]
        assert thread[-1]["text"] == "after space returned"
        await v.close()
    finally:
        server.stop()


async def test_a_read_only_database_is_refused_clearly_and_works_again_once_writable(
    small_disk: Path, tmp_path: Path,
) -> None:
    """The volume under the SQLite file comes back read-only (remounted while the server was
    stopped: Linux refuses to remount a filesystem read-only while the server holds the file
    open for writing). The server says why and does not start, so nothing can be acknowledged;
    once the volume is writable again it starts, and everything acknowledged before is there."""
    server = on_small_disk(small_disk, tmp_path)
    server.start()
    try:
        token = await login(server)
        v, welcome = await visitor(server)
        for n in range(3):
            await v.send(type="message.send", client_msg_id=f"m{n}", text=f"before {n}")
            await v.expect("ack", client_msg_id=f"m{n}")
        await v.close()
        assert await anyio.to_thread.run_sync(server.stop) == 0

        await anyio.to_thread.run_sync(remount, small_disk, "ro")
        try:
            with pytest.raises(RuntimeError, match="server exited"):
                await anyio.to_thread.run_sync(server.start)
            assert server.proc is not None and server.proc.wait(5) == 1
            log = server.logs()
            assert f"error: the database {small_disk / 'chat.db'} cannot be written" in log, log[-2000:]
            assert "Traceback" not in log, log[-2000:]
            server.stop()
            with pytest.raises(OSError):  # nobody listening: no widget can be told "stored"
                await visitor(server)
        finally:
            await anyio.to_thread.run_sync(remount, small_disk, "rw")

        server.start()
        v, _ = await visitor(server, token=welcome["token"], last_seq=3)
        await v.send(type="message.send", client_msg_id="m3", text="once writable again")
        await v.expect("ack", client_msg_id="m3")
        async with api(server, token) as http:
            [conversation] = (await http.get("/conversations")).json()["items"]
            thread = (await http.get(f"/conversations/{conversation['id']}/messages")).json()["items"]
        assert [(m["client_msg_id"], m["seq"]) for m in thread] == [("m0", 1), ("m1", 2), ("m2", 3), ("m3", 4)]
        await v.close()
    finally:
        server.stop()
