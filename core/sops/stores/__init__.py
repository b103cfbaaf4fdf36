"""Per-format loaders (encrypted file -> tree + metadata) and plain emitters (tree -> bytes).

Each module offers `load(data) -> (branches, metadata_dict)` and `emit(branches) -> bytes`,
mirroring the sops store of the same name (stores/<format>/store.go, sops 3.11).
"""

from __future__ import annotations

FORMATS = ("dotenv", "yaml", "json", "ini", "binary")
