"""The loopback HTTP(S) server every fake runs on: start on a free port, stop, base URL."""

from __future__ import annotations

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
