"""The registration journey's accounts: each with a password of its own,
told to the coordinator as it is sent and when answered, kept while the
server made (or may have made) it; a refused registration is not verified."""

from __future__ import annotations

import random

from landform.loadtest.fixtures import Account
from landform.loadtest.registrations import Registrations
from landform.loadtest.steps import Journey, Shared, register, verify_email


def journey(told: list[tuple[str, str, int | None]]) -> Journey:
    prepared = Account("lt-x-0@loadtest.example", "pw", pages=[{"id": "p", "slug": "s"}])
    shared = Shared(
        [prepared], {}, "ops", "abc1230",
        lambda account, status: told.append((account.email, account.password, status)),
    )  # fmt: skip

    def no_mail(method: str, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        raise AssertionError("no mail is read for a refused registration")

    return Journey.start(shared, random.Random(1), no_mail)  # noqa: S311


def test_each_registered_account_has_a_random_password_told_before_it_is_sent() -> None:
    told: list[tuple[str, str, int | None]] = []
    j = journey(told)
    first, second = register(j), register(j)
    (email_1, password_1, sent_1), (email_2, password_2, _) = told
    assert sent_1 is None  # before any answer
    assert email_1 != email_2 and password_1 != password_2
    for email, password, request in ((email_1, password_1, first), (email_2, password_2, second)):
        assert request.body is not None and password in request.body.decode()
        assert len(password) >= 20
        assert "abc123" not in password and email.split("@")[0] not in password


def test_a_refused_registration_is_not_verified_and_not_kept() -> None:
    told: list[tuple[str, str, int | None]] = []
    j = journey(told)
    request = register(j)
    assert request.on_answer is not None
    request.on_answer(429, b'{"error": {"code": "rate_limited"}}')
    assert told[-1][2] == 429
    assert verify_email(j) is None  # one refusal, counted once

    kept = Registrations()
    email, password, _ = told[0]
    assert kept.take({"registering": {"email": email, "password": password}})
    assert kept.take({"registered": email, "status": 429})
    assert kept.made() == []


def test_accounts_kept_are_those_the_server_made_or_may_have_made() -> None:
    kept = Registrations()
    for n in range(4):
        kept.take({"registering": {"email": f"a{n}@loadtest.example", "password": f"p{n}"}})
    kept.take({"registered": "a0@loadtest.example", "status": 201})
    kept.take({"registered": "a1@loadtest.example", "status": 0})  # no answer came
    kept.take({"registered": "a2@loadtest.example", "status": 503})
    # a3's answer never came: the generator stopped mid-request.
    assert not kept.take({"at": 3, "operations": {}})  # a measurement is not one
    assert kept.changed
    made = {a.email: a for a in kept.made()}
    assert not kept.changed
    assert set(made) == {f"a{n}@loadtest.example" for n in range(4)}
    assert not made["a0@loadtest.example"].unconfirmed
    assert all(made[f"a{n}@loadtest.example"].unconfirmed for n in (1, 2, 3))
    assert made["a3@loadtest.example"].password == "p3"
