"""Where webhook deliveries may connect: public addresses only.

An admin's endpoint URL must not become a way into the server's own network (a database, a
cloud metadata service, an admin panel behind the firewall). A URL naming an address is checked
when it is saved; a URL naming a host is checked on every connect, against every address the
name resolves to then, so a name that later points inside (DNS rebinding) is refused too.
Installations whose CRM lives on their own network allow private addresses by a setting;
link-local addresses (where metadata services answer) are never allowed.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


@dataclass(frozen=True)
class AddressRule:
    loopback: bool = False  # development and tests: the receiver runs on this machine
    private: bool = False  # on-premises installations: the CRM is on the same network

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone names an interface
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
            return False
        if ip.is_loopback:
            return self.loopback or self.private
        return ip.is_global or (self.private and ip.is_private)

    def refuses_literal(self, host: str) -> bool:
        """The URL's host is an address this rule refuses (names are checked on connect)."""
        try:
            return not self.allows(host)
        except ValueError:
            return False  # a name


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the rule allows."""

    def __init__(self, rule: AddressRule, inner: AbstractResolver | None = None) -> None:
        self._rule = rule
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if self._rule.allows(r["host"])]
        if not kept:
            # aiohttp reports this as a connection error: the delivery is retried, then fails
            # with this reason shown on the Admin page (aiohttp shows the error's strerror).
            raise OSError(errno.EACCES, f"{host} resolves only to private or reserved addresses "
                          f"({', '.join(sorted({r['host'] for r in found}))}); webhooks go to public addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()
