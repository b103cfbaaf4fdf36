"""``python -m core serve --config FILE [--port N]``: a local webhook endpoint.

POST /webhook runs exactly what the cloud handlers run (`core.intake.handle_webhook`): verify
the signature with the secret from ``WEBHOOK_SECRET`` or the config (``spec.webhook.secret``
/ ``secretRef``), fetch the pushed commit, sync the affected services into the store the config
names (the embedded local store by default). GET /healthz answers 200. Standard library only
(http.server); bound to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.intake import DeliveryCache, StoreFactory, handle_webhook, webhook_secret
from core.webhook import DEFAULT_MAX_BODY

log = logging.getLogger("smf.serve")


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    #: The listen backlog. The standard library's 5 reset 7–15 of 50 simultaneous deliveries;
    #: Git hosts send bursts (pushes to several branches, redeliveries after an outage). The
    #: kernel caps it at net.core.somaxconn. Accepting is cheap: only the syncs are serialised.
    request_queue_size = 128

    def __init__(
        self,
        configs: Sequence[Any],
        *,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        store_factory: StoreFactory | None = None,
        cache_dir: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.configs = list(configs)
        self.secret = secret
        self.store_factory = store_factory
        self.cache_dir = cache_dir
        self.max_body = max_body
        self.deliveries = DeliveryCache()
        # One push at a time: syncs of the same stores do not interleave.
        self.sync_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/webhook"


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.command, self.path)

    def _send(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/healthz", "/"):
            self._send(200, {"status": "ok", "configs": [c.name for c in self.server.configs]})
        else:
            self._send(404, {"status": "not found"})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/webhook":
            self._send(404, {"status": "not found"})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, {"status": "rejected", "reason": "Content-Length required"})
            return
        if int(length) > self.server.max_body:
            self.close_connection = True
            self._send(413, {"status": "rejected", "reason": "request body too large"})
            return
        body = self.rfile.read(int(length))
        headers = {k: v for k, v in self.headers.items()}
        with self.server.sync_lock:
            status, report = handle_webhook(
                headers, body, self.server.configs, secret=self.server.secret,
                store_factory=self.server.store_factory, cache_dir=self.server.cache_dir,
                deliveries=self.server.deliveries, max_body=self.server.max_body,
            )  # fmt: skip
        self._send(status, report)


def make_server(
    configs: Sequence[Any],
    *,
    port: int = 8080,
    host: str = "127.0.0.1",
    secret: str | None = None,
    store_factory: StoreFactory | None = None,
    cache_dir: str | None = None,
) -> WebhookServer:
    """A ready (not yet serving) webhook server; ``port=0`` picks a free port."""
    secret = secret or webhook_secret(configs, store_factory=store_factory)
    if not secret:
        from core.errors import ConfigError

        raise ConfigError(
            "no webhook secret: set WEBHOOK_SECRET or spec.webhook.secret / secretRef",
            field="spec.webhook.secret",
        )
    return WebhookServer(configs, secret=secret, host=host, port=port,
                         store_factory=store_factory, cache_dir=cache_dir)  # fmt: skip


def main(config: str, *, port: int = 8080, host: str = "127.0.0.1") -> int:
    """Load the config file and serve until interrupted. Returns the exit code."""
    import sys

    from core.config import load_config_file
    from core.errors import SyncError
    from core.git_fetch import user_cache_dir

    try:
        configs = load_config_file(config)
        # A warm cache by default: each push fetches only what is new (core.git_fetch).
        server = make_server(configs, port=port, host=host, cache_dir=user_cache_dir())
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"listening on {server.url} for {', '.join(c.name for c in configs)}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


serve = main
