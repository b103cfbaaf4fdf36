"""Binary store: a JSON envelope `{"data": ENC[...], "sops": {...}}`; output is the raw data."""

from __future__ import annotations

from core.sops.errors import FormatError
from core.sops.formats import json_format
from core.sops.tree import Branch

load = json_format.load


def emit(branches: list[Branch]) -> bytes:
    if len(branches) != 1:
        raise FormatError("error emitting binary store: there must be exactly one tree branch")
    for k, v in branches[0]:
        if k == "data":
            if isinstance(v, bytes):
                return v
            if isinstance(v, str):
                return v.encode("utf-8", "surrogateescape")
            raise FormatError("error emitting binary store: 'data' key in tree does not have a string value")
    raise FormatError("error emitting binary store: no binary data found in tree")
