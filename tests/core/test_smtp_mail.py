"""Verification mail over a real SMTP exchange (aiosmtpd as the server), and
as the embedded default's outbox keeps it."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.core.mail import SmtpMailer
from landform.settings import Settings
from tests.conftest import PASSWORD


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_smtp_server(smtputf8: bool) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    yield inbox, port
    controller.stop()


@asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on ``settings``, started and stopped around it."""
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    # SMTPUTF8, as mail servers offer it (Postfix, Exim, the big providers).
    with running_smtp_server(smtputf8=True) as server:
        yield server


@pytest.fixture
async def smtp_client(
    settings: Settings, smtp_server: tuple[Inbox, int], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    _, port = smtp_server
    async with client_of(settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})) as c:
        yield c


async def test_registration_mail_arrives_over_smtp_and_its_link_verifies(
    smtp_client: httpx.AsyncClient, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    response = await smtp_client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert inbox.envelopes[0][1] == ["ada@example.com"]
    assert message["To"] == "ada@example.com"
    assert "Confirm your email" in message["Subject"]
    body = message.get_content()
    link = re.search(r"http://testserver/auth/verify-email\?token=([A-Za-z0-9_-]+)", body)
    assert link, body

    verified = await smtp_client.post("/auth/verify-email", json={"token": link.group(1)})
    assert verified.status_code == 200
    assert verified.json()["email_verified"] is True


async def test_an_address_in_unicode_gets_its_mail(
    smtp_client: httpx.AsyncClient, smtp_server: tuple[Inbox, int]
) -> None:
    """A Unicode local part and an IDNA domain: the envelope and the To
    header name the address itself (they named an encoded word before,
    which is nobody's address)."""
    inbox, _ = smtp_server
    address = "zoë@exämple.com"
    response = await smtp_client.post(
        "/auth/register", json={"email": address, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    assert [recipients for _, recipients in inbox.envelopes] == [[address]]
    assert inbox.messages[0]["To"] == address
    assert "verify-email?token=" in inbox.messages[0].get_content()


@pytest.mark.parametrize("settings_update", [{"verification_resend_seconds": 0}], indirect=True)
async def test_registering_a_taken_address_mails_its_owner_over_smtp(
    smtp_client: httpx.AsyncClient, smtp_server: tuple[Inbox, int]
) -> None:
    """The second registration is answered as the first was; what tells
    the address's owner is a mail, through the same SMTP server."""
    inbox, _ = smtp_server
    answers = [
        await smtp_client.post(
            "/auth/register", json={"email": "ada@example.com", "password": password}
        )
        for password in (PASSWORD, "someone else's passphrase")
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json().keys() == answers[1].json().keys()
    assert [recipients for _, recipients in inbox.envelopes] == [["ada@example.com"]] * 2
    notice = inbox.messages[1]
    assert notice["To"] == "ada@example.com"
    assert notice["Subject"] == "Someone tried to sign up to Landform with your address"
    body = notice.get_content()
    assert "An account with it exists already" in body
    assert "POST http://testserver/auth/login" in body
    assert "token=" not in body


async def test_the_outbox_keeps_a_unicode_address_as_written(
    client: httpx.AsyncClient, app: Any
) -> None:
    """The embedded default's outbox (``landform mail outbox``) shows the
    message as it would go out: its To is the address, not an encoded word
    (``=?utf-8?q?zo=C3=AB?=@…``, which no mail program reads as one)."""
    address = "zoë@exämple.com"
    response = await client.post("/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    [kept] = await app.components.mailer.list(recipient=address)
    headers = kept.message.split("\n\n", 1)[0]
    assert f"To: {address}" in headers.splitlines()


def test_smtp_url_parsing() -> None:
    mailer = SmtpMailer("smtps://user%40x:p%3Ass@mail.example.com")
    assert (mailer.host, mailer.port, mailer.implicit_tls) == ("mail.example.com", 465, True)
    assert (mailer.username, mailer.password) == ("user@x", "p:ss")
    plain = SmtpMailer("smtp://mail.example.com:2525?starttls=true")
    assert (plain.port, plain.starttls, plain.implicit_tls) == (2525, True, False)
    with pytest.raises(ValueError):
        SmtpMailer("http://mail.example.com")


async def test_a_dead_smtp_server_is_logged_not_told_to_who_asks(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Registration, resend and reset answer as they do when mail works: a
    503 for an address with an account (and a 202 for one without) would
    tell anyone which addresses have one. The operator reads it in the log."""
    dead = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    async with client_of(dead) as client:
        response = await client.post(
            "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201  # the account exists; the mail can be resent
        for address in ("ada@example.com", "nobody@example.com"):
            for path in ("/auth/resend-verification", "/auth/forgot-password"):
                answer = await client.post(path, json={"email": address})
                assert answer.status_code == 202, (path, address, answer.text)
    assert "could not send the verification mail to ada@example.com" in caplog.text
    assert "could not send the password-reset mail to ada@example.com" in caplog.text


def test_the_outbox_command_says_mail_goes_over_smtp(settings: Settings) -> None:
    """As GET /ops/outbox does (outbox_disabled): an empty outbox is not
    where the mail went."""
    from typer.testing import CliRunner

    from landform.cli.main import app as cli

    runner = CliRunner()
    env = {"LANDFORM_DATA_DIR": str(settings.data_dir), "LANDFORM_SECRET_KEY": "k" * 40}
    if not settings.is_sqlite:
        env["LANDFORM_DATABASE_URL"] = settings.primary_database_url
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    listed = runner.invoke(
        cli, ["mail", "outbox"], env={**env, "LANDFORM_SMTP_URL": "smtp://127.0.0.1:2525"}
    )
    assert listed.exit_code == 0, listed.output
    assert "mail goes out over SMTP (LANDFORM_SMTP_URL), not to the outbox" in listed.output
    assert "note:" not in runner.invoke(cli, ["mail", "outbox"], env=env).output
    # Filtered to an address with no mail: said so, not "the outbox is empty".
    none = runner.invoke(cli, ["mail", "outbox", "--to", "nobody@example.com"], env=env)
    assert "(no mail to nobody@example.com in the outbox)" in none.output


@pytest.fixture
def ascii_only_smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A server that does not offer SMTPUTF8 (many still do not)."""
    with running_smtp_server(smtputf8=False) as server:
        yield server


@pytest.mark.parametrize(
    "settings_update",
    [{"mail_from": "Lándform Støtte <hello@pages.example.org>", "verification_token_ttl": 5400}],
    indirect=True,
)
async def test_mail_reaches_a_server_without_smtputf8(
    settings: Settings, ascii_only_smtp_server: tuple[Inbox, int]
) -> None:
    """An ASCII local part at a domain in Unicode goes out with the
    domain's ASCII form (it was never sent: "try again in a minute" for
    ever), a sender's name in Unicode as an encoded word, not raw 8-bit;
    and the mail says its link's lifetime exactly (it said "1 hours")."""
    inbox, port = ascii_only_smtp_server
    configured = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    async with client_of(configured) as client:
        answer = await client.post(
            "/auth/register", json={"email": "zoe@exämple.com", "password": PASSWORD}
        )
    assert answer.status_code == 201, answer.text
    assert [recipients for _, recipients in inbox.envelopes] == [["zoe@xn--exmple-cua.com"]]
    message = inbox.messages[0]
    assert message["From"] == "Lándform Støtte <hello@pages.example.org>"  # decoded
    assert "expires in 90 minutes" in message.get_content()
