"""Load a Terraform directory with python-hcl2 into one merged, unquoted dict.

Shape: ``{"resource": {type: {name: body}}, "data": {type: {name: body}}, "locals": {...},
"variable": {...}, "output": {...}}`` — what the infra tests of each cloud check the code
against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2


def _clean(value: Any) -> Any:
    """python-hcl2 keeps HCL quoting: strip it from keys and plain strings."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_terraform(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "output": {}}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as f:
            doc = _clean(hcl2.load(f))
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, items in block.items():
                    merged[kind].setdefault(rtype, {}).update(items)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
    return merged
