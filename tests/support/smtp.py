"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every mail it accepts.

::

    with SmtpServer(users={"alerts": "pass"}) as smtp:
        send(f"mailto://alerts:pass@127.0.0.1:{smtp.port}?from=a@example.org&to=b@example.org&mode=insecure")
        [mail] = smtp.wait_for(1)
        assert mail.message["Subject"] == "..."

Without ``users`` the server offers no AUTH and takes mail from anyone. With ``users`` it offers
AUTH PLAIN/LOGIN over the plain connection (no TLS: the test runs on the loopback interface) and
only those logins succeed; the mail is still accepted either way, ``login`` records who logged in.
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.ports import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # the message as sent over the wire
    login: str | None  # the user that authenticated on the connection, None without AUTH

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


class _DeprecatedLoginData(logging.Filter):
    """aiosmtpd 1.4 logs a warning about its own deprecated ``Session.login_data`` on every
    successful AUTH; it says nothing about the code under test."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


class SmtpServer:
    """Context manager: entering starts the server on ``port`` (default: a free one)."""

    def __init__(self, port: int | None = None, *, users: Mapping[str, str] | None = None) -> None:
        self._port = port or free_port()
        self._users = dict(users or {})
        self._lock = threading.Lock()
        self._mails: list[ReceivedMail] = []
        self._filter = _DeprecatedLoginData()
        self._controller: Controller | None = None

    def __enter__(self) -> Self:
        auth: dict[str, Any] = {}
        if self._users:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self._port, server_hostname="smtp.test", **auth
        )
        logging.getLogger("mail.log").addFilter(self._filter)
        self._controller.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._controller is not None
        self._controller.stop()
        logging.getLogger("mail.log").removeFilter(self._filter)

    @property
    def port(self) -> int:
        return self._port

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails
            if len(mails) >= count:
                return mails
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mails within {timeout}s, got {len(self.mails)}")

    # aiosmtpd handler hooks -----------------------------------------------------------------------

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth_data = session.auth_data if session.authenticated else None
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        content = envelope.content
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=content if isinstance(content, bytes) else str(content).encode(),
            login=login,
        )
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        valid = (
            isinstance(auth_data, LoginPassword)
            and self._users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=valid, auth_data=auth_data if valid else None)
