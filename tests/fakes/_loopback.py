"""The loopback HTTP(S) server every fake runs on: start on a free port, stop, base URL."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def start_server(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None, **attrs: Any
) -> ThreadingHTTPServer:
    """Serve `handler` on 127.0.0.1 (a free port) in a daemon thread; `attrs` are set on the
    server so the handler can reach its fake (``self.server.<name>``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    for name, value in attrs.items():
        setattr(server, name, value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def base_url(server: ThreadingHTTPServer | None, scheme: str = "http") -> str:
    assert server is not None, "the fake is not started"
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body (Content-Length bytes; empty without one)."""
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def send_json(handler: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
    """Answer `status` with `doc` as a JSON body."""
    out = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)
