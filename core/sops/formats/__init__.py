"""File formats sops encrypts: loaders (encrypted file -> tree + metadata) and emitters (tree -> bytes).

Each module offers `load(data) -> (branches, metadata_dict)` and `emit(branches) -> bytes`,
mirroring the sops "store" of the same name (stores/<format>/store.go, sops 3.11); named
`formats` here so they are not confused with the cloud stores in `core.stores`. YAML is split
in two: `yaml_format` loads, `yaml_emit` prints.
"""

from __future__ import annotations

FORMATS = ("dotenv", "yaml", "json", "ini", "binary")
