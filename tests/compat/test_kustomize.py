"""The native kustomize subset (core/kustomize.py) against `kustomize build` output shapes.

No kustomize binary runs here. Each case writes down the Secret/ConfigMap documents
`kustomize build` prints for the same tree (hash suffixes left out: the controller read
keys and values only), from kustomize's own generator tests
(``api/internal/generators/secret_test.go`` TestMakeSecret: ``app.env`` ``DB_USERNAME=admin``
→ ``DB_USERNAME: YWRtaW4=``; literals ``c="Hello World"`` → ``SGVsbG8gV29ybGQ=``, ``d='true'``
→ ``dHJ1ZQ==``; file ``app-init.ini`` → key ``app-init.ini``), its env-file rules
(``api/kv/kv.go`` keyValuesFromLine) and the merge/replace behaviours of overlays, and checks
that our build decodes to exactly those data maps.

Then the controller's use of it: `kustomizePath` syncs every key of every generated Secret,
named like a secrets-file key with prefix ``default`` when `secrets.prefix` is unset
(``reconcile/sync.rs:58-64``), and never a ConfigMap (``kustomize/properties.rs`` has no caller).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from core.config import parse_config_text
from core.discover import discover
from core.kustomize import KustomizeError, build, inputs
from core.source import LocalDirSource
from core.sync import run


def _write(root: Path, files: dict[str, str | bytes]) -> LocalDirSource:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return LocalDirSource(root)


def _decoded(build_output: str) -> dict[tuple[str, str], dict[str, str]]:
    """(kind, name) → data, decoded as the controller decoded Secret data (base64 → UTF-8)."""
    out = {}
    for doc in yaml.safe_load_all(build_output):
        data = doc.get("data") or {}
        if doc["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        out[(doc["kind"], doc["metadata"]["name"])] = data
    return out


def _ours(source: LocalDirSource, directory: str) -> dict[tuple[str, str], dict[str, str]]:
    result = build(source, directory)
    return {(r.kind, r.name): {k: i.value for k, i in r.data.items()} for r in result.resources}


# `kustomize build` of TestMakeSecret's inputs, as one kustomization (hash suffix removed).
GENERATORS_BUILD = """\
apiVersion: v1
data:
  app-init.ini: |
    FOO=bar
    BAR=baz
kind: ConfigMap
metadata:
  name: files
---
apiVersion: v1
data:
  DB_PASSWORD: cXdlcnR5
  DB_USERNAME: YWRtaW4=
kind: Secret
metadata:
  name: envSecret
type: Opaque
---
apiVersion: v1
data:
  a: eA==
  b: eQ==
  c: SGVsbG8gV29ybGQ=
  d: dHJ1ZQ==
kind: Secret
metadata:
  labels:
    foo: bar
  name: literalSecret1
type: Opaque
---
apiVersion: v1
data:
  app-init.ini: Rk9PPWJhcgpCQVI9YmF6Cg==
kind: Secret
metadata:
  name: fileSecret1
type: Opaque
"""


def test_generators_match_kustomize_build(tmp_path: Path) -> None:
    source = _write(tmp_path, {
        "k/kustomization.yaml": """
secretGenerator:
- name: envSecret
  envs: [secret/app.env]
- name: literalSecret1
  literals: ["a=x", "b=y", 'c="Hello World"', "d='true'"]
  options: {labels: {foo: bar}}
- name: fileSecret1
  files: [secret/app-init.ini]
configMapGenerator:
- name: files
  files: [secret/app-init.ini]
generatorOptions:
  disableNameSuffixHash: false
""",
        "k/secret/app.env": "DB_USERNAME=admin\nDB_PASSWORD=qwerty\n",
        "k/secret/app-init.ini": "FOO=bar\nBAR=baz\n",
    })  # fmt: skip
    assert _ours(source, "k") == _decoded(GENERATORS_BUILD)


# kv.go keyValuesFromLine: leading space trimmed, '#' lines skipped, value verbatim after the
# first '=', quotes kept, no '=' → empty value; a key=path file source names its key.
ENV_RULES_BUILD = """\
apiVersion: v1
data:
  EMPTY: ""
  QUOTED: J3NpbmdsZSc=
  SPACED: dmFsdWUgd2l0aCB0cmFpbGluZyAg
  URL: cG9zdGdyZXM6Ly91OnBAaDo1NDMyL2RiP3NzbD10cnVl
  cert.pem: LS0tLS1CRUdJTgo=
kind: Secret
metadata:
  name: app
type: Opaque
"""


def test_env_file_rules_match_kustomize_build(tmp_path: Path) -> None:
    env = (
        "\ufeff# a comment\n"
        "   URL=postgres://u:p@h:5432/db?ssl=true\n"
        "\n"
        "QUOTED='single'\n"
        "SPACED=value with trailing  \r\n"
        "EMPTY\n"
    )
    source = _write(tmp_path, {
        "k/kustomization.yml": "secretGenerator:\n- name: app\n  envs: [app.env]\n  files: [cert.pem=tls/c.pem]\n",
        "k/app.env": env,
        "k/tls/c.pem": "-----BEGIN\n",
    })  # fmt: skip
    assert _ours(source, "k") == _decoded(ENV_RULES_BUILD)


# An overlay over a base: resources → base dir, behavior merge (overlay keys win, base keys
# kept) and replace (base data dropped), namePrefix/nameSuffix/namespace only rename.
OVERLAY_BUILD = """\
apiVersion: v1
data:
  LOG_LEVEL: debug
kind: ConfigMap
metadata:
  name: dev-settings-v1
  namespace: shop
---
apiVersion: v1
data:
  API_KEY: b3ZlcmxheS1rZXk=
  DB_HOST: ZGIuYmFzZQ==
  EXTRA: eWVz
kind: Secret
metadata:
  name: dev-app-v1
  namespace: shop
type: Opaque
---
apiVersion: v1
data:
  TOKEN: bmV3
kind: Secret
metadata:
  name: dev-other-v1
  namespace: shop
type: Opaque
---
apiVersion: v1
data:
  PLAIN: ZnJvbS1yZXNvdXJjZQ==
kind: Secret
metadata:
  name: dev-listed-v1
  namespace: shop
type: Opaque
"""


def test_overlay_merge_and_replace_match_kustomize_build(tmp_path: Path) -> None:
    source = _write(tmp_path, {
        "base/kustomization.yaml": """
resources: [deployment.yaml, listed-secret.yaml]
secretGenerator:
- name: app
  literals: [DB_HOST=db.base, API_KEY=base-key]
- name: other
  literals: [TOKEN=old, DROPPED=x]
configMapGenerator:
- name: settings
  literals: [LOG_LEVEL=info]
""",
        "base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        "base/listed-secret.yaml": (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: listed}\n"
            f"data: {{PLAIN: {base64.b64encode(b'from-resource').decode()}}}\n"
        ),
        "dev/kustomization.yaml": """
namespace: shop
namePrefix: dev-
nameSuffix: -v1
commonLabels: {env: dev}
resources: [../base]
secretGenerator:
- name: app
  behavior: merge
  literals: [API_KEY=overlay-key, EXTRA=yes]
- name: other
  behavior: replace
  literals: [TOKEN=new]
configMapGenerator:
- name: settings
  behavior: merge
  literals: [LOG_LEVEL=debug]
""",
    })  # fmt: skip
    want = {
        (k, n.removeprefix("dev-").removesuffix("-v1")): d for (k, n), d in _decoded(OVERLAY_BUILD).items()
    }
    assert _ours(source, "dev") == want
    # every file the build reads, and nothing else (what a push must touch to affect it)
    assert inputs(source, "dev") == {
        "dev/kustomization.yaml", "base/kustomization.yaml", "base/deployment.yaml", "base/listed-secret.yaml",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kustomization", "field", "message"),
    [
        ("patches:\n- path: p.yaml\n", "patches", "outside the kustomize subset"),
        ("components: [../c]\n", "components", "outside the kustomize subset"),
        ("helmCharts: [{name: x}]\n", "helmCharts", "outside the kustomize subset"),
        ("resources: [https://github.com/x/y//base]\n", "resources[0]", "remote"),
        (
            "secretGenerator:\n- name: s\n  envs: [../outside.env]\n",
            "secretGenerator[0].envs[0]",
            "load restrictor",
        ),
        (
            "secretGenerator:\n- name: s\n  literals: [A=1, A=2]\n",
            "secretGenerator[0]",
            "repeats the key 'A'",
        ),
        (
            "secretGenerator:\n- name: s\n  behavior: merge\n  literals: [A=1]\n",
            "secretGenerator[0].behavior",
            "needs a Secret s",
        ),
        ("secretGenerator:\n- name: s\n  literals: [A]\n", "secretGenerator[0].literals[0]", "KEY=value"),
        (
            "secretGenerator:\n- name: s\n  kvSources: []\n",
            "secretGenerator[0].kvSources",
            "generator fields",
        ),
    ],
)
def test_outside_the_subset_is_an_error_naming_the_kustomization(
    tmp_path: Path, kustomization: str, field: str, message: str
) -> None:
    source = _write(tmp_path, {"app/k/kustomization.yaml": kustomization, "app/outside.env": "A=1\n"})
    with pytest.raises(KustomizeError) as info:
        build(source, "app/k")
    assert info.value.path == "app/k/kustomization.yaml"
    assert info.value.field == field
    assert message in info.value.message


def test_bad_env_key_names_the_env_file_and_line(tmp_path: Path) -> None:
    source = _write(tmp_path, {
        "k/kustomization.yaml": "secretGenerator:\n- name: s\n  envs: [a.env]\n",
        "k/a.env": "OK=1\nnot valid=2\n",
    })  # fmt: skip
    with pytest.raises(KustomizeError) as info:
        build(source, "k")
    assert (info.value.path, info.value.line) == ("k/a.env", 2)


# -- the controller's kustomizePath, end to end on the local store -----------------------------
#: Our API version with the controller's names and file semantics, on the embedded store
#: (the controller's API groups default to both; test_crd_fields.py checks that default).
CONFIG = """
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: shop}}
spec:
  provider: {{local: {{path: {db}}}}}
  naming: controller
  fileSemantics: {semantics}
  secrets:
    environment: dev
    kustomizePath: apps/orders/overlays/dev
"""


def _local(tmp_path: Path, semantics: str = "controller"):  # noqa: ANN202
    [cfg] = parse_config_text(CONFIG.format(db=tmp_path / "db.sqlite", semantics=semantics))
    return cfg


def test_kustomize_path_syncs_generated_secret_keys_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "k")
    source = _write(tmp_path / "repo", {
        "apps/orders/base/kustomization.yaml": "secretGenerator:\n- name: orders\n  envs: [secrets.env]\n",
        "apps/orders/base/secrets.env": "DB_PASSWORD=s3cret-kz\nAPI.KEY=k-kz\n",
        "apps/orders/overlays/dev/kustomization.yaml": (
            "resources: [../../base]\nnamePrefix: dev-\n"
            "configMapGenerator:\n- name: cfg\n  literals: [LOG_LEVEL=debug]\n"
        ),
        # read directly in our own mode, never by the controller's kustomize mode:
        "apps/orders/overlays/dev/application.secrets.env": "NOT_SYNCED=1\n",
    })  # fmt: skip
    cfg = _local(tmp_path)
    assert cfg.file_semantics == "controller"
    [svc] = discover(cfg, source)
    assert svc.kustomize and "apps/orders/base/secrets.env" in svc.files
    report = run([cfg], source, apply=False)
    assert report.errors == []
    names = {c.name: c.source for c in report.changes}
    # construct_secret_name("default", key, None): `.` → `_` (reconciler/utils.rs)
    assert names == {
        "default-DB_PASSWORD": "apps/orders/base/secrets.env:DB_PASSWORD",
        "default-API_KEY": "apps/orders/base/secrets.env:API.KEY",
    }
    assert any("1 ConfigMap key(s) from kustomize not synced" in w for w in report.warnings)
    # a push touching only the base affects the service; one elsewhere does not
    assert discover(cfg, source, {"apps/orders/base/secrets.env"})
    assert not discover(cfg, source, {"apps/billing/x.env"})


def test_kustomize_path_without_kustomization_is_the_controllers_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "k")
    source = _write(tmp_path / "repo", {"apps/orders/overlays/dev/application.secrets.env": "A=1\n"})
    report = run([_local(tmp_path)], source, apply=False)
    [err] = report.errors
    assert err["field"] == "spec.secrets.kustomizePath" and "kustomization.yaml" in err["message"]
    assert report.outcome == "failed"


def test_our_file_semantics_still_read_the_kustomize_directory_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "k")
    source = _write(tmp_path / "repo", {
        "apps/orders/overlays/dev/kustomization.yaml": "patches: [{path: p.yaml}]\n",
        "apps/orders/overlays/dev/application.secrets.env": "A=1\n",
    })  # fmt: skip
    cfg = _local(tmp_path, "functions")
    report = run([cfg], source, apply=False)
    assert report.errors == [] and [c.source for c in report.changes] == [
        "apps/orders/overlays/dev/application.secrets.env:A"
    ]


def test_a_sops_file_that_does_not_decrypt_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator input that looks SOPS-encrypted is decrypted or fails with the decrypt
    error naming it; it is never reported as missing, nor read as plaintext."""
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "k")
    source = _write(tmp_path / "repo", {
        "apps/orders/overlays/dev/kustomization.yaml": "secretGenerator:\n- name: s\n  envs: [s.env]\n",
        "apps/orders/overlays/dev/s.env": "DB_PASSWORD=ENC[AES256_GCM,data:abc=,iv:abc=,tag:abc=,type:str]\n",
    })  # fmt: skip
    report = run([_local(tmp_path)], source, apply=False)
    [err] = report.errors
    assert err["kind"] == "decrypt" and err["path"] == "apps/orders/overlays/dev/s.env"
    assert report.changes == []
