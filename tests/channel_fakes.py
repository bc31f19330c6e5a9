"""The adapters wired to the fake VK server, for the channel tests (the fakes themselves are
the `tg` and `vk` fixtures in conftest.py)."""

from __future__ import annotations

from integrations.base import AdapterRegistry
from integrations.email import EmailAdapter
from integrations.telegram import TelegramAdapter
from integrations.vk import VkAdapter
from tests.fakes.vk_api import FakeVk


def fake_vk_registry(vk: FakeVk) -> AdapterRegistry:
    """The real adapters, with VK's HTTP session pointed at the fake."""
    return AdapterRegistry([TelegramAdapter(), VkAdapter(session_hook=vk.mount_on), EmailAdapter()])
