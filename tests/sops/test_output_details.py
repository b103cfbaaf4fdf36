"""Issue #10 item 10: output details checked against the real `sops -d`, and merge keys.

Each test encrypts with the real sops binary, then compares our `decrypt()` with `sops -d`
byte for byte, or (where matching sops would be wrong for a sync) asserts the documented
difference (docs/sops.md, "Fidelity").
"""

from __future__ import annotations

from pathlib import Path

from core.parsers import parse_file
from core.sops import KeyRing, decrypt, detect_format
from tests.sops.conftest import AgeKey, Sops
from tests.support.two_services import run_two_services

MERGE = """\
defaults: &defaults
  host: db.internal
  port: 5432
svc:
  <<: *defaults
  port: 6543
other:
  <<: [*defaults, {extra: one}]
quoted:
  "<<": not-a-merge
"""


def _ours(data: bytes, name: str, key: AgeKey, output_type: str | None = None) -> bytes:
    ring = KeyRing(age_identities=[key.secret], env={})
    return decrypt(data, detect_format(name), path=name, keyring=ring, output_type=output_type)


def test_yaml_merge_keys_print_as_sops_does_and_sync_merged(
    sops: Sops, age_keys: list[AgeKey], tmp_path: Path
) -> None:
    name = "application.secrets.yaml"
    data = sops.encrypt(name, MERGE, recipients=age_keys[:1])
    theirs = sops.decrypt(name, data, keys=age_keys[:1])
    assert theirs.rc == 0
    ours = _ours(data, name, age_keys[0])
    assert b"!!merge <<:" in theirs.out
    assert ours == theirs.out
    items = {i.key: i.value for i in parse_file(name, ours.decode())}
    assert items["svc.host"] == "db.internal" and items["svc.port"] == "6543"
    assert items["other.extra"] == "one" and items["other.host"] == "db.internal"
    assert items["quoted.<<"] == "not-a-merge"
    out = run_two_services(
        name, data, root=tmp_path, keyring=KeyRing(age_identities=[age_keys[0].secret], env={})
    )
    assert out.b_errors == []
    assert {"b/dev/svc.host", "b/dev/svc.port", "b/dev/other.extra"} <= out.b_names
    assert not any(n.startswith(("b/dev/svc.__", "b/dev/other.__")) for n in out.b_names)
