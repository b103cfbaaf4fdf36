"""Scan everything a run emitted for known secret values.

Usage::

    leaks = LeakCheck(["s3cr3t", ...])
    leaks.scan(stdout, stderr, json.dumps(report), caplog.text, where="apply")
    leaks.scan_file(db_path)

A value is looked for as written, JSON-escaped, and URL/base64 encoded, so an accidental
``json.dumps`` or a base64'd payload in a log also counts as a leak. Values shorter than 6
characters are ignored (they would match by chance).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable
from pathlib import Path


class LeakCheck:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if len(s) >= 6]
        forms: list[tuple[str, bytes]] = []
        for s in self.secrets:
            raw = s.encode()
            for variant in {
                raw,
                json.dumps(s)[1:-1].encode(),
                urllib.parse.quote(s).encode(),
                base64.b64encode(raw),
                base64.urlsafe_b64encode(raw).rstrip(b"="),
            }:
                forms.append((s, variant))
        self.forms = forms

    def scan(self, *blobs: str | bytes | None, where: str = "output") -> None:
        for blob in blobs:
            if blob is None:
                continue
            data = blob.encode() if isinstance(blob, str) else blob
            for secret, form in self.forms:
                assert form not in data, f"secret value #{self.secrets.index(secret)} leaked into {where}"

    def scan_file(self, path: str | Path) -> None:
        self.scan(Path(path).read_bytes(), where=str(path))

    def scan_tree(self, root: str | Path) -> None:
        for p in Path(root).rglob("*"):
            if p.is_file():
                self.scan_file(p)
