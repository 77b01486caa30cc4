"""Public slugs: the shape they must have and the words they must not be."""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

# Every top-level path Landform serves now or is keeping for later features
# of its own (an app, sign-in, ops). The words a marketer's site is made of
# (pricing, about, contact, signup, blog, terms, privacy, …) are theirs.
RESERVED = frozenset(
    {
        # served today or by planned features
        "auth",
        "landing-pages",
        "templates",
        "blocks",
        "files",
        "assets",
        "analytics",
        "graphql",
        "ws",
        "ops",
        "metrics",
        "healthz",
        "readyz",
        "livez",
        "docs",
        "redoc",
        "openapi.json",
        "app",
        "static",
        "api",
        "admin",
        "sitemap.xml",
        "robots.txt",
        "favicon.ico",
        "loadtest",
        "web",
        "users",
        "account",
        "accounts",
        "login",
        "logout",
        "register",
        "signin",
        "settings",
        "dashboard",
        "status",
        "health",
        "public",
        "p",
        "s",
        "preview",
        "previews",
        "media",
        "uploads",
        "cdn",
        "well-known",
        ".well-known",
        "webhooks",
        "webhook",
        "oauth",
        "sso",
        "billing",
        "new",
        "edit",
        "search",
        "index",
        "www",
        "system",
        "internal",
        "debug",
        "test",
        "null",
        "undefined",
        "landform",
    }
)


def slug_problem(slug: str) -> str | None:
    if slug in RESERVED:  # first: some (sitemap.xml) are no slug's shape either
        return f"'{slug}' is reserved for Landform's own paths; choose another slug"
    if not SLUG_PATTERN.match(slug):
        return (
            "slug must be 1-64 lowercase letters, digits and hyphens, "
            "not starting or ending with a hyphen"
        )
    return None


def slugify(text: str) -> str:
    """A slug derived from a title: transliterated to ASCII (any script, so
    "Привет" is "privet" rather than nothing, and "Straße" "strasse"),
    lower-cased, hyphenated. Symbols (emoji) go first: their names
    (":rocket:") are no words of the title."""
    words = "".join(" " if unicodedata.category(ch).startswith("S") else ch for ch in text)
    ascii_text = anyascii(words)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:56].rstrip("-") or "page"
    if slug in RESERVED:
        slug = f"{slug}-page"
    return slug
