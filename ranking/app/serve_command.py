"""``marginrank serve``: the HTTP search service over a bundle (the service extra)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from clv.errors import MarginRankError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve``."""
    serve = subparsers.add_parser("serve", help="run the HTTP search service (the service extra)")
    serve.add_argument("--bundle", type=Path, required=True,
                       help="bundle folder written by demo or build")
    serve.add_argument("--config", type=Path, help="weights YAML to serve and reload "
                       "(default: the bundle's)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--state-dir", type=Path, help="where the last good config is kept "
                       "(it then survives restarts; default: a private temporary directory)")
    serve.add_argument("--admin-token-file", type=Path, help="file holding the bearer token of "
                       "PUT /config and POST /reload (or env MARGINRANK_ADMIN_TOKEN; neither: "
                       "those endpoints are off)")
    serve.add_argument("--events", type=Path, help="log impressions and accept POST /events "
                       "into this directory (default: off; env MARGINRANK_EVENTS)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ranking.app.service import serve  # imported here: fastapi is an optional extra

    if args.events is not None:  # the service factory (every worker) reads it from the env
        from ranking.app.events_api import ENV_EVENTS

        try:
            args.events.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MarginRankError(f"--events {args.events}: cannot create: {exc.strerror}") from exc
        os.environ[ENV_EVENTS] = str(args.events.resolve())
    return serve(args.bundle, args.config, args.host, args.port, args.workers,
                 state_dir=args.state_dir, admin_token_file=args.admin_token_file)
