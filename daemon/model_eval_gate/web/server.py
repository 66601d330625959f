"""`model-eval-gate web`: serve the application with uvicorn.

The database is the operator's (MODEL_EVAL_GATE_DSN, or the embedded one),
unless MODEL_EVAL_GATE_WEB_DSN names another role: a read-only one is enough
(`docs/web.md` has the GRANTs). Every page reads in a READ ONLY transaction
either way. It binds 127.0.0.1 by default and has no authentication of its
own: put it behind a reverse proxy that authenticates (docs/web.md).
"""
from __future__ import annotations

import socket
import sys

import uvicorn

from ..config import Settings
from .app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class WebServerError(RuntimeError):
    """The server could not start (the address is taken or not ours)."""


def web_dsn(settings: Settings) -> str:
    import os

    from .. import db

    return os.environ.get("MODEL_EVAL_GATE_WEB_DSN") or db.resolve_dsn(settings)


def serve(settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, root_path: str = "",
          refresh_seconds: int = 5, stream=sys.stdout) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise WebServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                             "(choose another address with --host/--port)") from None
    listener.listen(128)
    bound = listener.getsockname()[1]
    app = create_app(web_dsn(settings), refresh_seconds=refresh_seconds)
    shown = f"[{host}]" if ":" in host else host
    print(f"model-eval-gate web: serving http://{shown}:{bound}{root_path}/ (read-only; Ctrl-C stops it)",
          file=stream, flush=True)
    if host not in LOOPBACK:
        print(f"warning: listening on {host}, beyond this machine, with no authentication of its own; "
              "put it behind an authenticating reverse proxy (docs/web.md)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, root_path=root_path, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])
    return 0
