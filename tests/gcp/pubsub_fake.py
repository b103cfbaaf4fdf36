"""A minimal Pub/Sub REST endpoint (``PUBSUB_EMULATOR_HOST``) that records published messages.

Only ``POST /v1/projects/P/topics/T:publish`` (the documented REST shape): the handler's
hand-off publishes there, and tests deliver the recorded messages to the CloudEvent function
as Pub/Sub's push to Eventarc would.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PUBLISH = re.compile(r"^/v1/(projects/[^/]+/topics/[^/:]+):publish$")


class _Handler(BaseHTTPRequestHandler):
    server: PubSubFake

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:  # noqa: N802
        m = _PUBLISH.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not m or not body.get("messages"):
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ids = []
        for msg in body["messages"]:
            self.server.counter += 1
            mid = str(self.server.counter)
            self.server.published.append({"topic": m.group(1), "messageId": mid, **msg})
            ids.append(mid)
        data = json.dumps({"messageIds": ids}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class PubSubFake(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.published: list[dict[str, Any]] = []
        self.counter = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
