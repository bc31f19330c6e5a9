"""Whether a mailbox's settings work: an SMTP login and an IMAP login (and its folder), tried
before the mailbox is saved, each failure said in terms of which server and what to fix."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import socket
import ssl
from typing import Any, Protocol

from .base import CredentialsRefused

TIMEOUT = 15.0


class EmailConfig(Protocol):
    """The mailbox settings the check reads (email.EmailConfig has them)."""

    smtp_host: str
    smtp_port: int

    @property
    def smtp_security(self) -> str: ...

    smtp_username: str
    smtp_password: str
    ca_file: str
    imap_host: str
    imap_port: int

    @property
    def imap_security(self) -> str: ...

    imap_username: str
    imap_password: str
    imap_folder: str


def _tls(config: EmailConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.ca_file:
        try:
            context.load_verify_locations(cafile=config.ca_file)
        except OSError as exc:
            raise CredentialsRefused("ca_file_unreadable", f"the CA file {config.ca_file} could not be read: {exc}") from exc
    return context


def _network(kind: str, host: str, port: int, exc: BaseException) -> CredentialsRefused:
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        why = f"the host name {host!r} could not be found"
    elif isinstance(exc, ConnectionRefusedError):
        why = f"nothing answers at {where} (connection refused): check the host and the port"
    elif isinstance(exc, TimeoutError):
        why = f"no answer from {where} within {TIMEOUT:.0f} s: check the host, the port and any firewall"
    elif isinstance(exc, ssl.SSLError):
        return CredentialsRefused(f"{kind}_tls_failed", f"the secure connection to the {kind.upper()} server {where} "
                                  f"failed ({exc.reason or exc}): check the security setting and the port")
    else:
        why = f"{where} could not be reached: {exc}"
    return CredentialsRefused(f"{kind}_unreachable", f"the {kind.upper()} server could not be reached: {why}")


def _smtp(config: EmailConfig) -> None:
    context = _tls(config)
    host, port = config.smtp_host, config.smtp_port
    try:
        smtp = (smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context) if config.smtp_security == "ssl"
                else smtplib.SMTP(host, port, timeout=TIMEOUT))
    except (OSError, smtplib.SMTPException) as exc:
        if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
            raise CredentialsRefused("smtp_refused", f"the SMTP server {host}:{port} refused us: {exc}") from exc
        raise _network("smtp", host, port, exc) from exc
    with smtp:
        try:
            if config.smtp_security == "starttls":
                smtp.starttls(context=context)
            if config.smtp_username:
                smtp.login(config.smtp_username, config.smtp_password)
        except smtplib.SMTPNotSupportedError as exc:
            raise CredentialsRefused("smtp_refused", f"the SMTP server {host}:{port} does not offer "
                                     f"{'STARTTLS' if 'STARTTLS' in str(exc) else 'login'}: {exc}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            words = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise CredentialsRefused("smtp_login_refused", f"the SMTP server {host} refused the login of "
                                     f"{config.smtp_username!r}: {exc.smtp_code} {words}. Check the user name and "
                                     "the password (some providers want an app password)") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise _network("smtp", host, port, exc) from exc
        except smtplib.SMTPException as exc:
            raise CredentialsRefused("smtp_refused", f"the SMTP server {host}:{port} refused us: {exc}") from exc
        except OSError as exc:
            raise _network("smtp", host, port, exc) from exc


def _imap(config: EmailConfig) -> None:
    host, port = config.imap_host, config.imap_port
    try:
        imap = (imaplib.IMAP4_SSL(host, port, ssl_context=_tls(config), timeout=TIMEOUT)
                if config.imap_security == "ssl" else imaplib.IMAP4(host, port, timeout=TIMEOUT))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise _network("imap", host, port, exc if isinstance(exc, OSError) else OSError(str(exc))) from exc
    try:
        try:
            imap.login(config.imap_username, config.imap_password)
        except imaplib.IMAP4.error as exc:
            raise CredentialsRefused("imap_login_refused", f"the IMAP server {host} refused the login of "
                                     f"{config.imap_username!r}: {exc}. Check the user name and the password") from exc
        status, answer = imap.select(_quoted(config.imap_folder), readonly=True)
        if status != "OK":
            raise CredentialsRefused("imap_folder_missing", f"the IMAP server {host} has no folder "
                                     f"{config.imap_folder!r}: {answer[-1:]!r}")
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise _network("imap", host, port, exc if isinstance(exc, OSError) else OSError(str(exc))) from exc
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the server may already have hung up


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def check_mailbox(config: EmailConfig) -> dict[str, Any]:
    """SMTP (when a server is given) and IMAP (when one is given), one after the other."""
    if config.smtp_host:
        await asyncio.to_thread(_smtp, config)
    if config.imap_host:
        await asyncio.to_thread(_imap, config)
    return {}
