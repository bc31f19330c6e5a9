"""docker-compose.yml and the Dockerfile, read as files (Docker cannot run here): two replicas
that agree on everything they must share, migrations run once before them, real services."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chat_server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]  # type: ignore[no-any-return]


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def replicas(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services built from this repository that run the image's default command (serve)."""
    return {name: s for name, s in services.items() if "build" in s and not command(s)}


def host_of(url: str) -> str:
    # ${VAR:-default} inside the password does not matter here; only the host does.
    return urlsplit(re.sub(r"\$\{[^}]*\}", "x", url)).hostname or ""


def image_of(services: dict[str, dict[str, Any]], name: str) -> str:
    return str(services[name]["image"])


def test_two_replicas_of_the_chat_server(services: dict[str, dict[str, Any]]) -> None:
    assert len(replicas(services)) == 2, sorted(services)
    assert image_of(services, "redis").startswith("redis:7")
    assert image_of(services, "postgres").startswith("postgres:15")
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


def test_replicas_share_secret_database_and_redis(services: dict[str, dict[str, Any]]) -> None:
    envs = [env(s) for s in replicas(services).values()]
    for key in ("CHAT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        values = {e.get(key) for e in envs}
        assert len(values) == 1 and None not in values, f"{key} differs between replicas: {values}"
    shared = envs[0]
    assert host_of(shared["DATABASE_URL"]) == "postgres" and shared["DATABASE_URL"].startswith("postgres")
    assert host_of(shared["REDIS_URL"]) == "redis" and shared["REDIS_URL"].startswith("redis://")
    # The secret comes from the operator's environment; what is written here is only a
    # placeholder that says so.
    secret = shared["CHAT_SECRET_KEY"]
    assert secret.startswith("${CHAT_SECRET_KEY") and "change" in secret


def test_replicas_keep_attachments_in_one_object_store(services: dict[str, dict[str, Any]]) -> None:
    """Files on a replica's own disk would be missing when the other replica is asked."""
    envs = [env(s) for s in replicas(services).values()]
    for key in ("CHAT_S3_BUCKET", "CHAT_S3_ENDPOINT_URL", "CHAT_S3_ACCESS_KEY_ID", "CHAT_S3_SECRET_ACCESS_KEY"):
        values = {e.get(key) for e in envs}
        assert len(values) == 1 and None not in values and "" not in values, f"{key}: {values}"
    assert host_of(envs[0]["CHAT_S3_ENDPOINT_URL"]) == "minio"
    assert image_of(services, "minio").startswith("minio/minio")
    assert any(v.endswith(":/data") for v in services["minio"]["volumes"])  # files outlive the container
    for replica in replicas(services).values():
        assert replica["depends_on"]["minio"]["condition"] == "service_healthy"


def test_migrations_run_once_before_the_replicas(services: dict[str, dict[str, Any]]) -> None:
    migrate = [name for name, s in services.items() if command(s)[-1:] == ["migrate"]]
    assert len(migrate) == 1, "one one-shot `chat-server migrate` service"
    name = migrate[0]
    assert command(services[name]) == ["chat-server", "migrate"]
    assert env(services[name])["DATABASE_URL"] == env(next(iter(replicas(services).values())))["DATABASE_URL"]
    assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for replica in replicas(services).values():
        assert env(replica)["CHAT_AUTO_MIGRATE"] == "false"  # a string: compose refuses YAML booleans
        depends = replica["depends_on"]
        assert depends[name]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_every_setting_named_in_compose_exists(services: dict[str, dict[str, Any]]) -> None:
    """A typo (CHAT_AUTO_MIGRATION) would be ignored silently by the server."""
    fields = set(Settings.model_fields)
    for name, service in services.items():
        if "build" not in service:
            continue
        for key in env(service):
            if key.startswith("CHAT_"):
                assert key.removeprefix("CHAT_").lower() in fields, f"{name}: unknown setting {key}"
            else:
                assert key in ("DATABASE_URL", "REDIS_URL", "FORWARDED_ALLOW_IPS"), f"{name}: {key}?"


def test_nginx_balances_over_both_replicas(services: dict[str, dict[str, Any]]) -> None:
    nginx = services["nginx"]
    mounted = [v.split(":")[0] for v in nginx["volumes"]]
    conf = (ROOT / mounted[0]).read_text()
    for name in replicas(services):
        assert re.search(rf"server\s+{re.escape(name)}:8000", conf), f"{name} not in the upstream"
    assert "proxy_set_header Upgrade $http_upgrade" in conf  # WebSockets pass through
    assert "proxy_set_header Host $http_host" in conf  # the port too: Origin is checked against it


def test_dockerfile_runs_the_console_script() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    cmd_lines = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)
    assert len(cmd_lines) == 1
    argv = json.loads(cmd_lines[0])  # exec form: SIGTERM reaches the server, not a shell
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts and scripts[argv[0]] == "chat_server.cli:main"
    assert argv[1:] == ["serve", "--host", "0.0.0.0"]
    # `pip install .` gets the whole context, without what must not go into the image.
    assert re.search(r"^COPY \. \.$", dockerfile, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env", "data"} <= set(ignored)
    assert not {"pyproject.toml", "README.md", "chat_server"} & set(ignored)  # the build needs these
