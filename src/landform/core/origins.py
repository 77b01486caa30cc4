"""Origins as browsers send them (read by the settings, so nothing heavy here)."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalized_origin(origin: str) -> str:
    """An origin as a browser sends it: the scheme and host in lower case,
    no default port, no trailing slash (``https://App.example.com:443/`` is
    ``https://app.example.com``); ``*`` stays."""
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}"
