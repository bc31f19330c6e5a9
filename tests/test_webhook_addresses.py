"""Which addresses webhook deliveries may connect to, by setting."""

from __future__ import annotations

import pytest

from chat_server.webhook_addresses import AddressRule

PUBLIC, LOOPBACK, PRIVATE = AddressRule(), AddressRule(loopback=True), AddressRule(private=True)


@pytest.mark.parametrize(("address", "default", "loopback", "private"), [
    ("93.184.216.34", True, True, True),
    ("2606:2800:220:1:248:1893:25c8:1946", True, True, True),
    ("127.0.0.1", False, True, True),
    ("::1", False, True, True),
    ("10.1.2.3", False, False, True),
    ("192.168.0.10", False, False, True),
    ("::ffff:192.168.0.10", False, False, True),  # IPv4 written as IPv6 is judged as IPv4
    ("fd00::1", False, False, True),
    ("169.254.169.254", False, False, False),  # cloud metadata: link-local, never
    ("fe80::1%eth0", False, False, False),
    ("0.0.0.0", False, False, False),
    ("224.0.0.1", False, False, False),
])
def test_each_rule_allows_what_it_says(address: str, default: bool, loopback: bool, private: bool) -> None:
    assert (PUBLIC.allows(address), LOOPBACK.allows(address), PRIVATE.allows(address)) == (default, loopback, private)


def test_names_are_left_to_the_connect_time_check() -> None:
    assert not PUBLIC.refuses_literal("crm.example.com")
    assert PUBLIC.refuses_literal("10.0.0.1") and not PRIVATE.refuses_literal("10.0.0.1")
