"""Mail backends: an outbox in the database (the embedded default, read with
``landform mail outbox``) or a real SMTP server (``LANDFORM_SMTP_URL``)."""

from __future__ import annotations

import asyncio
import email.policy
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select

from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.mail_models import OutboxMessage

log = logging.getLogger(__name__)


def compose(sender: str, recipient: str, subject: str, text: str) -> EmailMessage:
    # An address with an ASCII local part and a domain in Unicode
    # (registration keeps IDNA domains so) goes out with the domain's ASCII
    # form, which every server takes. Only a local part in Unicode needs
    # SMTPUTF8; its address is then written as UTF-8, as SMTPUTF8 sends it:
    # the default policy wrote it as encoded words, which no mail program
    # reads as an address. A display name in Unicode alone is an encoded
    # word (RFC 2047), as any server takes it, not raw UTF-8.
    sender, recipient = ascii_domain(sender), ascii_domain(recipient)
    international = not (parseaddr(sender)[1].isascii() and recipient.isascii())
    message = EmailMessage(policy=email.policy.SMTPUTF8 if international else email.policy.default)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="landform.local")
    # Plain 7bit, not quoted-printable: links and tokens stay copyable as printed.
    message.set_content(text, cte="7bit")
    return message


def ascii_domain(mailbox: str) -> str:
    """``mailbox`` (an address, or "Name <address>") with its domain in
    ASCII (IDNA: ``exämple.com`` → ``xn--exmple-cua.com``) when its local
    part is ASCII; as it was otherwise (SMTPUTF8 carries it whole), or when
    the domain is ASCII already or has no ASCII form."""
    name, address = parseaddr(mailbox)
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii() or not local.isascii():
        return mailbox
    try:
        ascii_address = f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return mailbox
    return formataddr((name, ascii_address)) if name else ascii_address


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class OutboxMailer:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def send(self, message: EmailMessage) -> None:
        async with self.db.write() as session:
            session.add(
                OutboxMessage(
                    recipient=str(message["To"]),
                    subject=str(message["Subject"]),
                    message=message.as_string(),
                    created_at=self.clock.now(),
                )
            )

    async def list(self, limit: int = 20, recipient: str | None = None) -> list[OutboxMessage]:
        async with self.db.read_primary() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
            if recipient:
                query = query.where(OutboxMessage.recipient == ascii_domain(recipient.lower()))
            return list((await session.scalars(query)).all())


class SmtpMailer:
    """``smtp://user:pass@host:port`` (``?starttls=true`` to upgrade) or
    ``smtps://…`` for implicit TLS. smtplib runs in a thread: it blocks."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("LANDFORM_SMTP_URL must start with smtp:// or smtps://")
        self.host = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self.timeout = timeout

    def _send_blocking(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send_blocking, message)
