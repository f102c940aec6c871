"""``marginrank config push FILE --url URL``: change a running service's weights in one step.

The file is validated here first (the same schema checks as ``validate-config``; the service
checks again against its bundle's products), then its text is sent whole with
``PUT /config``: the service never reads a file that may be half written. The admin token
comes from ``--token-file`` or ``MARGINRANK_ADMIN_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from clv.errors import MarginRankError

TIMEOUT_SECONDS = 30


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``config`` group and its one action, ``push``."""
    config = subparsers.add_parser("config", help="change a running service's weights config")
    actions = config.add_subparsers(required=True, metavar="ACTION")
    push = actions.add_parser("push", help="validate a weights file, then PUT it to a "
                              "running service (atomic: the whole text, or nothing)")
    push.add_argument("file", type=Path, help="the weights YAML")
    push.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8080")
    push.add_argument("--token-file", type=Path, help="file holding the admin token "
                      "(default: the MARGINRANK_ADMIN_TOKEN environment variable)")
    push.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the file here, then PUT its whole text; prints the version now served."""
    import hashlib  # here, not at the top: `marginrank --help` does not pay for http
    import urllib.error
    import urllib.request

    from objectives.config import load_config, read_config_text

    load_config(args.file)  # ConfigError names file, line and key; nothing is sent
    text = read_config_text(args.file)
    token = _token(args.token_file)
    request = urllib.request.Request(
        args.url.rstrip("/") + "/config", data=text.encode("utf-8"), method="PUT",
        headers={"Content-Type": "application/yaml", "Authorization": f"Bearer {token}",
                 # the text validated here: anything else arriving is refused
                 "X-Content-SHA256": hashlib.sha256(text.encode()).hexdigest()})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise MarginRankError(f"{args.url} refused {args.file}: {exc.code} "
                              f"{_explain(exc.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MarginRankError(f"cannot reach {args.url}: {reason}") from None
    print(f"{args.file}: serving as config version {body['config_version']} "
          f"(generation {body['config_generation']})")
    return 0


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MarginRankError(f"{token_file}: cannot read ({exc.strerror})") from None
    else:
        token = os.environ.get("MARGINRANK_ADMIN_TOKEN", "").strip()
    if not token:
        raise MarginRankError("no admin token: pass --token-file or set MARGINRANK_ADMIN_TOKEN")
    return token


def _explain(raw: bytes) -> str:
    """The service's refusal in one line: each error's line, key and message."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", errors="replace")
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        return "; ".join(f"line {e.get('line')} {e.get('key')}: {e.get('message')}"
                         for e in errors)
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
