"""The SMTP server, through Python's own `smtplib`, and what its replies mean.

``--smtp URL`` (or ``INVOICING_SMTP_URL``):

* ``smtp://[user@]host[:port]`` (port 587 by default) upgrades the connection with
  STARTTLS; a server that does not offer it is refused, except on a loopback address
  (``127.0.0.1``, ``::1``, ``localhost``), where there is no network to protect (a local
  relay or the test server);
* ``smtps://[user@]host[:port]`` (port 465 by default) speaks TLS from the start.

With a user in the URL the password comes from ``INVOICING_SMTP_PASSWORD`` (never from
the URL, which shows in process lists and logs). Certificates are checked against the
system's trust store (``SSL_CERT_FILE`` points OpenSSL at another one).

A message goes out as ``MAIL FROM``, ``RCPT TO`` and ``DATA`` (`smtplib`'s own commands)
so that the server's reply to each step can be recorded. A 2xx reply to ``DATA`` means
accepted; a 4xx reply or a dropped connection is temporary; a 5xx reply is permanent.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from invoicing.core.errors import ExitCode, InvoicingError, UsageError

PASSWORD_VARIABLE: Final = "INVOICING_SMTP_PASSWORD"
DEFAULT_PORTS: Final = {"smtp": 587, "smtps": 465}
TIMEOUT_S: Final = 60.0

ACCEPTED: Final = "accepted"
TEMPORARY: Final = "temporary"
PERMANENT: Final = "permanent"


class DeliveryError(InvoicingError):
    """Documents were not all accepted, or the server cannot be used: exit 14. What was
    sent is in the ledger; a rerun sends the rest."""

    exit_code = ExitCode.NOT_DELIVERED


@dataclass(frozen=True)
class SmtpServer:
    """Where messages are sent.

    Attributes:
      scheme: ``smtp`` (STARTTLS) or ``smtps`` (implicit TLS).
      host, port: the server.
      user: the login, or None to send without authenticating.
      password: from ``INVOICING_SMTP_PASSWORD`` when there is a user.
    """

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL as shown to the user (never with a password)."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_url(text: str) -> SmtpServer:
    """``smtp://[user@]host[:port]`` or ``smtps://…``; anything else is a usage error."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--smtp {text!r}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise UsageError(f"--smtp {text!r} is not an SMTP server URL such as "
                         "smtp://mail.example.com:587 or smtps://user@mail.example.com")
    if parts.password is not None:
        raise UsageError(f"--smtp: give the password in {PASSWORD_VARIABLE}, not in the URL")
    user = unquote(parts.username) if parts.username else None
    password = os.environ.get(PASSWORD_VARIABLE) if user else None
    if user and not password:
        raise UsageError(f"--smtp names the user {user!r}: set {PASSWORD_VARIABLE}")
    return SmtpServer(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                      user, password)


@dataclass(frozen=True)
class Reply:
    """What became of one attempt.

    Attributes:
      kind: ``accepted``, ``temporary`` or ``permanent``.
      text: the server's reply (``250 2.0.0 Ok: queued``), or what happened instead.
      dropped: the connection was lost (or never made): it must be opened again.
    """

    kind: str
    text: str
    dropped: bool = False


def _reply(code: int, message: bytes | str) -> Reply:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    text = f"{code} {' '.join(text.split())}".strip()
    if 200 <= code < 300:
        return Reply(ACCEPTED, text)
    return Reply(TEMPORARY if 400 <= code < 500 else PERMANENT, text)


class Connection:
    """One session with the server, opened on first use and again after a drop."""

    def __init__(self, server: SmtpServer, timeout: float = TIMEOUT_S):
        self.server = server
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        server = self.server
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if server.scheme == "smtp":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif not server.loopback:
                    raise DeliveryError(
                        f"{server.url}: the server does not offer STARTTLS; use smtps:// or a "
                        "server that encrypts (documents are not sent in clear text)")
            if server.user:
                smtp.login(server.user, server.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            refused = _reply(exc.smtp_code, exc.smtp_error).text
            raise DeliveryError(f"{server.url}: login refused ({refused}); check the user "
                                f"and {PASSWORD_VARIABLE}") from None
        except BaseException:
            smtp.close()
            raise
        return smtp

    def open(self) -> Reply | None:
        """Connect (and log in) unless connected: None when ready, else why not, as a
        temporary `Reply` (nothing was sent). A refused login or a missing STARTTLS
        raises `DeliveryError`: no retry can fix those."""
        if self._smtp is not None:
            return None
        try:
            self._smtp = self._open()
        except smtplib.SMTPResponseException as exc:  # e.g. 421 or 554 to the greeting
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return Reply(reply.kind, f"{self.server.url} refused the connection ({reply.text})",
                         dropped=True)
        except (OSError, smtplib.SMTPException) as exc:
            return Reply(TEMPORARY, f"cannot reach {self.server.url} ({exc})", dropped=True)
        return None

    def send(self, sender: str, recipient: str, message: bytes) -> Reply:
        """One attempt: MAIL FROM, RCPT TO, DATA. Never raises for the server's answers or
        a lost connection; those come back as a `Reply`."""
        problem = self.open()
        if problem is not None:
            return problem
        smtp = self._smtp
        assert smtp is not None
        try:
            for step in (lambda: smtp.mail(sender), lambda: smtp.rcpt(recipient)):
                code, text = step()
                if code not in (250, 251):
                    reply = _reply(code, text)
                    self._reset()
                    return reply
            try:
                code, text = smtp.data(message)
            except smtplib.SMTPDataError as exc:
                self._reset()
                return _reply(exc.smtp_code, exc.smtp_error)
            reply = _reply(code, text)
            if reply.kind != ACCEPTED:
                self._reset()
            return reply
        except smtplib.SMTPServerDisconnected as exc:
            self.close()
            return Reply(TEMPORARY, f"connection lost ({exc or 'closed by the server'})",
                         dropped=True)
        except smtplib.SMTPResponseException as exc:
            self.close()
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return Reply(reply.kind, reply.text, dropped=True)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Reply(TEMPORARY, f"connection failed ({type(exc).__name__}: {exc})",
                         dropped=True)

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (OSError, smtplib.SMTPException):
            self._smtp.close()
        self._smtp = None
