"""The small HTML pages a person reaches from a mail link.

The link in the verification mail opens a confirmation page; the account is
verified only when the person presses the button (a form POST), so mail
scanners that prefetch links do not use up the token."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2937}h1{font-size:1.5rem}button{font:inherit;padding:.6rem 1.2rem;border:0;"
    "border-radius:.5rem;background:#4f46e5;color:#fff;cursor:pointer}"
    "button:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px}"
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"


INCOMPLETE_LINK = (
    "This link is incomplete: open the whole link from the mail (some mail programs "
    "cut long links in two), or copy all of it into the address bar."
)
EXPIRED_LINK = (
    "This link has expired. Ask for a new confirmation mail where you signed up "
    "(POST /auth/resend-verification with your address); the new link works the same way."
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)} · Landform</title>'
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def confirm_page(token: str) -> str:
    return _page(
        "Confirm your email",
        "<h1>Confirm your email</h1><p>One click and your pages can go live.</p>"
        '<form method="post" action="/auth/verify-email/confirm">'
        f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'
        '<button type="submit">Confirm my email</button></form>',
    )


def result_page(ok: bool, message: str) -> str:
    title = "Email confirmed" if ok else "This link did not work"
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
