"""Issue #10 item 1 on files the real `sops` wrote: every metadata field removed, retyped or
duplicated, and the whole block removed or replaced, in YAML, JSON and dotenv.

The property: the sync either decrypts the file correctly (a field sops does not need, such
as `version`, may go) or fails the service with an error naming the file and writes nothing
for it. It never stores a ciphertext or a data-key envelope, whatever requireEncrypted says.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.sops import KeyRing
from core.stores.local import LocalSecretStore
from tests.sops.conftest import AgeKey, Sops
from tests.support.two_services import assert_fails_closed, run_two_services

SECRETS = {"DB_PASSWORD": "db-secret-value-1", "API_TOKEN": "api-token-value-2"}
#: Fields without which sops itself cannot decrypt or verify the file.
REQUIRED = {"mac", "lastmodified", "age"}
STRIPPED = "looks SOPS-encrypted but its metadata is missing or invalid"


@pytest.fixture(scope="module")
def encrypted(sops_session: Sops, age_keys: list[AgeKey]) -> dict[str, bytes]:
    plain = {
        "application.secrets.yaml": "".join(f"{k}: {v}\n" for k, v in SECRETS.items()),
        "application.secrets.json": json.dumps(SECRETS),
        "application.secrets.env": "".join(f"{k}={v}\n" for k, v in SECRETS.items()),
    }
    return {name: sops_session.encrypt(name, text, recipients=age_keys[:1]) for name, text in plain.items()}


def _yaml_fields(text: str) -> list[str]:
    block = text[text.index("\nsops:\n") :]
    return re.findall(r"(?m)^    ([a-z_]+):", block)


def _yaml_mutations(text: str) -> dict[str, str]:
    head, block = text.split("\nsops:\n", 1)
    lines = block.split("\n")
    out = {
        "block removed": head + "\n",
        "block is a list": head + "\nsops:\n    - x\n",
        "block is a string": head + "\nsops: x\n",
    }
    for name in _yaml_fields(text):
        start = next(i for i, ln in enumerate(lines) if ln.startswith(f"    {name}:"))
        end = start + 1
        while end < len(lines) and lines[end].startswith("      "):
            end += 1
        field = lines[start:end]
        rest = lines[:start] + lines[end:]
        out[f"{name} removed"] = head + "\nsops:\n" + "\n".join(rest)
        out[f"{name} retyped"] = (
            head + "\nsops:\n" + "\n".join([*rest[:start], f"    {name}: [1, 2]", *rest[start:]])
        )
        out[f"{name} duplicated"] = head + "\nsops:\n" + "\n".join(lines[:end] + field + lines[end:])
    return out


def _json_mutations(text: str) -> dict[str, str]:
    doc = json.loads(text)
    out = {"block removed": json.dumps({k: v for k, v in doc.items() if k != "sops"})}
    out["block is a list"] = json.dumps({**doc, "sops": [1]})
    out["block is a string"] = json.dumps({**doc, "sops": "x"})
    for name, value in doc["sops"].items():
        md = {k: v for k, v in doc["sops"].items() if k != name}
        out[f"{name} removed"] = json.dumps({**doc, "sops": md})
        out[f"{name} retyped"] = json.dumps({**doc, "sops": {**doc["sops"], name: {"x": [1]}}})
        dup = json.dumps(value)
        out[f"{name} duplicated"] = text.replace('"sops": {', f'"sops": {{"{name}": {dup},', 1)
    return out


def _dotenv_mutations(text: str) -> dict[str, str]:
    lines = [ln for ln in text.split("\n") if ln]
    body = [ln for ln in lines if not ln.startswith("sops_")]
    md = [ln for ln in lines if ln.startswith("sops_")]
    out = {"block removed": "\n".join(body) + "\n"}
    for name in sorted({ln[5:].split("=")[0].split("__")[0] for ln in md}):
        own = [ln for ln in md if ln[5:].split("=")[0].split("__")[0] == name]
        others = [ln for ln in md if ln not in own]
        out[f"{name} removed"] = "\n".join(body + others) + "\n"
        out[f"{name} retyped"] = "\n".join([*body, *others, f"sops_{name}__list_0=1"]) + "\n"
        out[f"{name} duplicated"] = "\n".join(body + md + own[:1]) + "\n"
    return out


MUTATORS = {
    "application.secrets.yaml": _yaml_mutations,
    "application.secrets.json": _json_mutations,
    "application.secrets.env": _dotenv_mutations,
}


def _field(case: str) -> str:
    return case.rsplit(" ", 1)[0]


@pytest.mark.parametrize("name", list(MUTATORS))
def test_every_metadata_mutation_decrypts_correctly_or_fails_closed(
    name: str, encrypted: dict[str, bytes], age_keys: list[AgeKey], tmp_path: Path
) -> None:
    ring = KeyRing(age_identities=[age_keys[0].secret], env={})
    intact = run_two_services(name, encrypted[name], root=tmp_path / "intact", keyring=ring)
    assert intact.b_errors == [] and intact.b_names == {f"b/dev/{k}" for k in SECRETS}
    mutations = MUTATORS[name](encrypted[name].decode())
    assert len(mutations) >= 12
    refused = []
    for i, (case, text) in enumerate(mutations.items()):
        for require in (False, True):
            out = run_two_services(
                name, text.encode(), root=tmp_path / f"m{i}{require}", keyring=ring, require_encrypted=require
            )
            if not out.b_failed:
                # Only a field sops can do without may be dropped; then the values are right.
                assert _field(case) not in REQUIRED and case != "block removed", case
                store = LocalSecretStore(str(tmp_path / f"m{i}{require}" / "store.db"))
                assert {k: store.get_value(f"b/dev/{k}") for k in SECRETS} == SECRETS, case
                continue
            err = assert_fails_closed(out, name)
            assert "ENC[" not in json.dumps(out.report.errors), case
            refused.append((case, err["message"]))
    messages = dict(refused)
    for case in ("block removed", "block is a list", "block is a string", "mac removed", "mac retyped"):
        if case in mutations:
            assert STRIPPED in messages[case], (case, messages[case])
    assert len(refused) >= len(mutations)  # most mutations are refused (twice: both settings)
