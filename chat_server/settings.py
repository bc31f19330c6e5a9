"""The only module that reads the environment (and an optional `.env`)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage: the embedded default is a SQLite file under ./data; PostgreSQL by URL.
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    data_dir: Path = Path("data")
    # Fan-out crosses processes through Redis when set; in-process otherwise.
    redis_url: str = Field(default="", validation_alias="REDIS_URL")

    # Signs visitor tokens. Persisted under data_dir when not given so tokens survive restarts.
    secret_key: str = ""
    # Origins allowed to open the widget socket. Empty: only the server's own host; "*": any.
    allowed_origins: str = ""

    # Bring the schema up to date at start. Replicas behind one database turn this off and
    # let a single `chat-server migrate` run first (see docker-compose.yml).
    auto_migrate: bool = True

    # The first start creates an admin; these fix its login instead of a random password.
    initial_admin_email: str = "admin@localhost.localdomain"
    initial_admin_password: str = ""

    # Run the channels' polling loops and the outbound queue in this process. With several
    # replicas, leave it on in one (Telegram allows one poller per bot); the queue itself is
    # safe to run everywhere.
    channel_workers: bool = True

    # The outbound queue: how often a reply is tried before it is marked failed, the first
    # wait between tries (doubling, capped at ten minutes), and how long one send may take.
    outbound_max_attempts: int = Field(default=8, ge=1, le=100)
    outbound_retry_seconds: float = Field(default=2.0, gt=0, le=600)
    outbound_send_timeout: float = Field(default=120.0, gt=0, le=3600)
    # Outgoing webhooks (chat_server/webhooks.py): tries per delivery before it is marked failed,
    # the first wait between tries (doubling with jitter, capped at an hour), how long one
    # request may take, and whether endpoints may be plain http on a loopback address (tests
    # and local development; production endpoints are https). Deliveries connect to public
    # addresses only (chat_server/webhook_addresses.py); an on-premises installation whose CRM
    # is on its own network allows private ones.
    webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    webhook_retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_timeout: float = Field(default=5.0, gt=0, le=60)
    webhook_allow_http_loopback: bool = False
    webhook_allow_private_networks: bool = False
    # Hosts channel files may be downloaded from (comma-separated; "*.example.com" matches its
    # subdomains). Only the services' own file hosts: a payload naming any other URL is not
    # fetched. Private, loopback and link-local addresses are refused unless a host is named
    # here exactly (tests name their local fakes this way).
    channel_file_hosts: str = (
        "api.telegram.org,*.userapi.com,*.vk.com,vk.com,*.vk.ru,vk.ru,*.vkuseraudio.net,"
        "*.vk-cdn.net,*.vkuservideo.net,*.mycdn.me"
    )
    channel_download_timeout: float = Field(default=60.0, gt=0, le=600)
    # The server's address as people's mail clients reach it (https://chat.example.com): the
    # open pixel, click redirects and unsubscribe links in automatic emails point here. Empty:
    # http://<host>:<port>, which only suits a server on a public address without a proxy.
    public_url: str = ""

    # permessage-deflate on the sockets. Chat frames are small JSON that barely shrinks, and each
    # socket compresses every frame again: off saves CPU per recipient (see bench/notes.md).
    ws_compression: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    # Limits that keep one client from hurting the others.
    max_frame_bytes: int = 64 * 1024
    max_body_bytes: int = 256 * 1024
    send_queue_frames: int = 1000
    visitor_messages_per_minute: int = 60
    ip_connects_per_minute: int = 120
    operator_session_days: int = 14
    # Failed logins counted per window (shared through Redis when REDIS_URL is set); past a
    # limit the answer is 429 with Retry-After. 0 switches a limit off. See docs/security.md.
    login_window_seconds: int = Field(default=900, ge=1)
    login_failures_per_account_address: int = 10
    login_failures_per_address: int = 100
    # Does not apply to addresses the account logged in from before, so it cannot lock them out.
    login_failures_per_account: int = 300
    # Behaviour events (`track`) one visitor may send per minute (0: no limit).
    visitor_events_per_minute: int = 120
    # A visitor token is good this long; the widget gets a fresh one on every connect and, on a
    # socket open that long, halfway through. Revoked at once by the widget's shutdown().
    visitor_token_days: int = Field(default=30, ge=1, le=3650)
    # Tokens issued before tokens expired carry no date: accept them at the widget's hello
    # (which replaces them) while widgets come back after an upgrade; turn off after that.
    visitor_legacy_tokens: bool = True
    # An online operator with no inbox open for this long becomes away, so the widget stops
    # promising an answer (0: never). Fractions are allowed (tests use a few seconds).
    away_after_minutes: float = Field(default=10, ge=0)
    # Files sent in chats: stored under data_dir/attachments unless given.
    max_attachment_bytes: int = 10 * 1024 * 1024
    # Files one visitor may upload per hour (0: no limit), so nobody fills the disk.
    visitor_uploads_per_hour: int = 60
    # Retention, in days (0: kept for ever). Behaviour events older than this are pruned in
    # the background; so are conversations closed and quiet for longer than this, with their
    # messages and the files no other message shares.
    event_retention_days: int = Field(default=0, ge=0, le=36_500)
    closed_conversation_retention_days: int = Field(default=0, ge=0, le=36_500)
    attachments_dir: Path | None = None
    # Set a bucket to keep attachments in S3-compatible object storage instead, shared by every
    # server process (needed with more than one replica). Keys left empty fall back to the
    # AWS SDK's usual sources (AWS_ACCESS_KEY_ID…, instance roles).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # e.g. http://minio:9000; empty for AWS itself
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_prefix: str = "attachments/"
    # The widget's static files (widget.js, widget/*, the demo site); the checkout's by default.
    widget_dir: Path = Path(__file__).resolve().parent.parent / "widget"
    # Serve the demo site (home, pricing, product pages with the widget) under /demo/.
    demo_site: bool = True
    # On first start, add the demo trigger (3 views of the pricing page in 10 minutes: a bot
    # says hello in the chat). false: not added.
    demo_trigger: bool = True
    # How often each process's trigger worker looks for due sends (a new send wakes it at once).
    trigger_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # /metrics answers only with "Authorization: Bearer <this>"; unset, /metrics is 404.
    metrics_token: str = ""

    @property
    def effective_attachments_dir(self) -> Path:
        return self.attachments_dir or self.data_dir / "attachments"

    @property
    def origin_allow_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def channel_file_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.channel_file_hosts.split(",") if h.strip()]

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'chat.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @cached_property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key)
        path.chmod(0o600)
        return key


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url
