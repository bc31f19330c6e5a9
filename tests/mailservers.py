"""Real mail servers on loopback for the email tests: Dovecot for IMAP (Debian's
dovecot-imapd, run from a throwaway config) and an aiosmtpd sink standing in for the
provider's SMTP submission server."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.services import free_port

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "support@acme.test", "imap-password"


class DovecotServer:
    def __init__(self) -> None:
        if not os.path.exists(DOVECOT):
            raise RuntimeError("dovecot is not installed (Debian package dovecot-imapd)")
        # Dovecot's own processes drop to the dovecot user: pytest's 0700 tmp dirs are closed
        # to it, so the server gets a directory of its own that it may enter.
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DovecotServer:
        mail = self.dir / "mail"
        mail.mkdir(parents=True)
        owner = pwd.getpwnam("dovecot")
        os.chown(mail, owner.pw_uid, owner.pw_gid)
        (self.dir / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.dir / "dovecot.conf").write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with imaplib.IMAP4("127.0.0.1", self.port) as probe:
                    probe.login(USER, PASSWORD)
                return self
            except (OSError, imaplib.IMAP4.error):
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        log = self.dir / "dovecot.log"
        self.__exit__()
        raise RuntimeError("dovecot did not start: " + (log.read_text() if log.exists() else ""))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """A message arrives in the mailbox (as a mail server's delivery would put it there)."""
        with imaplib.IMAP4("127.0.0.1", self.port) as imap:
            imap.login(USER, PASSWORD)
            status, _ = imap.append(folder, None, None, raw)
            assert status == "OK"

    def seen_flags(self) -> list[bytes]:
        with imaplib.IMAP4("127.0.0.1", self.port) as imap:
            imap.login(USER, PASSWORD)
            imap.select("INBOX", readonly=True)
            _, data = imap.fetch("1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if address in self.sink.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.sink.defer > 0:  # a provider's bad day: try again later
            self.sink.defer -= 1
            return "451 4.3.0 Temporary local problem, please try again later"
        data = envelope.original_content or b""
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.sink.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg, login))
        return "250 OK"


class SmtpSink:
    """The provider's SMTP submission server: STARTTLS with a certificate from a test CA,
    then AUTH; keeps what it is given."""

    def __init__(self, ca: trustme.CA, username: str = "smtp-user",
                 password: str = "smtp-password") -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.defer = 0  # how many of the next messages are answered 451
        self.credentials = (username, password)

        def authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str,
                         data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticate, auth_required=True,
                                     tls_context=context, require_starttls=True)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
