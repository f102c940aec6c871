"""Who may change the served weights: the bearer of the admin token, from this origin.

The token comes from ``MARGINRANK_ADMIN_TOKEN`` or a file (``--admin-token-file``; the file is
read, never echoed). Without one, the admin endpoints are off (403): changing what a public
search service ranks by is not something an anonymous caller may do.

A browser on another site cannot send the token (it is not a cookie), but the checks do not
rely on that alone: a request whose ``Origin`` is not this service's, or whose
``Sec-Fetch-Site`` says another site, is refused, and a write must declare a content type a
cross-origin form or ``text/plain`` fetch cannot send without a CORS preflight.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from fastapi import HTTPException, Request

from clv.errors import MarginRankError

ENV_ADMIN_TOKEN = "MARGINRANK_ADMIN_TOKEN"
ENV_ADMIN_TOKEN_FILE = "MARGINRANK_ADMIN_TOKEN_FILE"
#: Shorter tokens are refused at start: a token is a password nobody types.
MIN_TOKEN_CHARS = 16
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml"})
JSON_TYPES = frozenset({"application/json"})


def load_token(token_file: str | Path | None = None) -> str | None:
    """The admin token (file first, then the environment), or None (admin endpoints off)."""
    path = token_file or os.environ.get(ENV_ADMIN_TOKEN_FILE)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MarginRankError(f"{path}: cannot read the admin token file "
                                  f"({exc.strerror})") from None
    else:
        token = os.environ.get(ENV_ADMIN_TOKEN, "").strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise MarginRankError(f"the admin token must be at least {MIN_TOKEN_CHARS} characters")
    return token


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_admin(request: Request, token: str | None, allowed_types: frozenset[str],
                  body_optional: bool = False) -> None:
    """Raise 403/401/415 unless ``request`` may change the config (see the module doc).

    ``allowed_types``: the content types the endpoint reads; with ``body_optional``, a request
    with no body and no content type passes too.
    """
    if token is None:
        raise HTTPException(403, "admin endpoints are off: start the service with "
                                 f"{ENV_ADMIN_TOKEN} or --admin-token-file")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"cross-origin write refused (Sec-Fetch-Site: {site})")
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin.lower() != own.lower():
            raise HTTPException(403, "cross-origin write refused (Origin is not this service)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise HTTPException(401, "admin token missing or wrong",
                            headers={"WWW-Authenticate": "Bearer"})
    kind = media_type(request)
    no_body = not kind and request.headers.get("content-length", "0") == "0" \
        and "transfer-encoding" not in request.headers
    if not (kind in allowed_types or (body_optional and no_body)):
        raise HTTPException(415, f"content type {kind or '(none)'!r} refused; send "
                                 f"{' or '.join(sorted(allowed_types))}")
