"""Typed store options: declared once per store, validated when the config is loaded."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from core import options, registry
from core.config import parse_config_text
from core.errors import ConfigError
from tests.core.test_registry import ROOT


def doc(provider: str, section: str, configs: str = "enabled: true") -> str:
    body = textwrap.indent(textwrap.dedent(section).strip("\n"), "      ")
    return f"""apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: opts
spec:
  provider:
    type: {provider}
    {provider}:
{body}
  secrets:
    environment: dev
  configs: {{{configs}}}
"""


@pytest.mark.parametrize(
    ("provider", "section", "configs", "field", "line_of", "message"),
    [
        (
            "gcp",
            "projectId: p\nlocation: europe-west1\nreplication:\n  locations: [us-east1]",
            "enabled: true",
            "spec.provider.gcp.replication.locations",
            "  locations: [us-east1]",
            "global secrets only",
        ),
        (
            "gcp",
            "projectId: p\nparameterManager:\n  mode: document\n  format: UNFORMATTED\n  secretReferences: true",
            "enabled: true, store: ParameterManager",
            "spec.provider.gcp.parameterManager.secretReferences",
            "  secretReferences: true",
            "YAML or JSON",
        ),
        (
            "azure",
            "appConfig:\n  keyVaultReferences: true",
            "enabled: true",
            "spec.provider.azure.appConfig.keyVaultReferences",
            "  keyVaultReferences: true",
            "vaultName or vaultUrl",
        ),
        (
            "aws",
            "secretsManager:\n  recoveryWindowInDays: 3",
            "enabled: true",
            "spec.provider.aws.secretsManager.recoveryWindowInDays",
            "  recoveryWindowInDays: 3",
            "between 7 and 30",
        ),
        (
            "aws",
            "secretsManager:\n  recoveryWindowInDays: 7\n  forceDeleteWithoutRecovery: true",
            "enabled: true",
            "spec.provider.aws.secretsManager.forceDeleteWithoutRecovery",
            "  forceDeleteWithoutRecovery: true",
            "not both",
        ),
    ],
)
def test_cross_field_rules_fail_at_load_naming_file_line_and_field(  # type: ignore[no-untyped-def]
    provider, section, configs, field, line_of, message
) -> None:
    text = doc(provider, section, configs)
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, "smf-config.yaml")
    lines = text.splitlines()
    line = next(
        i for i, ln in enumerate(lines, 1) if ln.endswith(line_of.strip()) and ln.strip() == line_of.strip()
    )
    assert (err.value.path, err.value.line, err.value.field) == ("smf-config.yaml", line, field)
    assert message in str(err.value) and f"smf-config.yaml:{line}" in str(err.value)


def test_unknown_and_mistyped_options_name_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text(doc("aws", "parameterStore:\n  tire: Advanced"), "c.yaml")
    assert err.value.field == "spec.provider.aws.parameterStore.tire" and err.value.line == 10
    with pytest.raises(ConfigError) as err:
        parse_config_text(doc("gcp", "projectId: p\nversionHygiene: {keepVersions: many}"), "c.yaml")
    assert err.value.field == "spec.provider.gcp.versionHygiene.keepVersions"
    with pytest.raises(ConfigError, match="must be one of disable, destroy, none"):
        parse_config_text(doc("gcp", "projectId: p\nversionHygiene: {action: shred}"), "c.yaml")


def test_defaults_come_from_the_options_dataclasses_only() -> None:
    [aws] = parse_config_text(doc("aws", "region: eu-west-1"))
    ps = aws.options_for("aws-parameter-store")
    assert (ps.type, ps.tier, ps.tags) == ("String", "Auto", {})
    # The plain view the config keeps carries the same defaults, derived from the dataclass.
    assert aws.provider_options["parameterStore"]["type"] == "String"
    assert aws.provider_options["secretsStore"] == aws.provider_settings.secrets_store == "SecretsManager"
    [gcp] = parse_config_text(doc("gcp", "projectId: p"))
    sm = gcp.options_for("gcp-secret-manager")
    assert (sm.version_hygiene.keep_versions, sm.version_hygiene.action, sm.replication.automatic) == (
        3,
        "disable",
        True,
    )
    pm = gcp.options_for("gcp-parameter-manager")
    assert (pm.mode, pm.format, pm.location) == ("perKey", "YAML", "global")
    [az] = parse_config_text(doc("azure", "vaultName: v"))
    assert az.options_for("azure-app-configuration").separator == ":"
    assert az.options_for("azure-key-vault").purge_on_delete is False
    # Every kind with options is covered by a dataclass whose fields all have a default or are
    # required: nothing else supplies one.
    for kind in registry.KINDS:
        cls = kind.options_class()
        if cls is not None:
            assert dataclasses.is_dataclass(cls)
            assert options.schema_fields(cls)


def test_loading_a_config_imports_no_cloud_sdk() -> None:
    texts = [doc("gcp", "projectId: p"), doc("aws", "region: eu-west-1"), doc("azure", "vaultName: v")]
    code = textwrap.dedent(
        f"""
        import sys
        before = set(sys.modules)  # the venv's *-nspkg.pth files pre-import 'google' itself
        from core.config import parse_config_text
        for text in {texts!r}:
            parse_config_text(text)
        sdk = sorted(
            m for m in set(sys.modules) - before if m.split(".")[0] in ("boto3", "botocore", "google", "azure")
        )
        assert not sdk, sdk
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
