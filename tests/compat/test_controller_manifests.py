"""The controller's own manifests: valid ones load unchanged, invalid ones are refused by field.

The corpus (`controller_docs/`, commits in its README) holds every distinct SecretManagerConfig
document of the controller's two repositories; the oracle is the controller's CRD itself,
validated with `jsonschema` (crd_oracle.py), so this test does not trust core/crd.py's copy of
the constraints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.config import parse_config_text
from core.errors import ConfigError
from tests.compat.crd_oracle import CORPUS, CrdOracle

pytestmark = pytest.mark.skipif(
    CORPUS is None,
    reason="the controller's documents are not on this machine (not committed: fetched material; "
    "see tests/compat/CORPUS.md, set SMF_CONTROLLER_CORPUS)",
)
DOCS = sorted((CORPUS / "documents").glob("*.yaml")) if CORPUS else []
ORACLE = CrdOracle() if CORPUS else None


def _verdicts() -> tuple[list[Path], list[Path]]:
    valid, invalid = [], []
    if ORACLE is None:
        return valid, invalid
    for path in DOCS:
        (valid if not ORACLE.errors(yaml.safe_load(path.read_text())) else invalid).append(path)
    return valid, invalid


VALID, INVALID = _verdicts()


def test_corpus_is_the_collected_one() -> None:
    """Both repositories, both API groups, and both verdicts are represented."""
    assert len(DOCS) == 172
    assert len(VALID) == 92 and len(INVALID) == 80
    groups = {yaml.safe_load(p.read_text())["apiVersion"] for p in VALID}
    assert groups == {"secret-management.microscaler.io/v1beta1", "secret-management.octopilot.io/v1beta1"}


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_controller_document_loads_unchanged(path: Path) -> None:
    [cfg] = parse_config_text(path.read_text(), str(path))
    assert cfg.naming == "controller" and cfg.file_semantics == "controller"
    assert cfg.provider in ("aws", "gcp", "azure")


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_controller_document_is_refused_naming_the_field(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(path.read_text(), str(path))
    err = info.value
    assert err.path == str(path)
    assert err.field, f"no field named: {err}"
    # The field named is one the CRD's own errors are about (or lies in or above one of them:
    # the CRD check and ours may look at a wrong block at different depths).
    oracle_fields = ORACLE.fields(yaml.safe_load(path.read_text()))
    assert any(
        err.field == f or f.startswith(err.field + ".") or err.field.startswith(f + ".")
        for f in oracle_fields
    ), (err.field, sorted(oracle_fields))
