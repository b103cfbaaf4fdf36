"""Every field of the controller's CRD is accepted, with its serverless meaning or a warning."""

from __future__ import annotations

import pytest

from core.config import parse_config_text
from core.errors import ConfigError
from core.intake import resync

BASE = """apiVersion: secret-management.{group}/v1beta1
kind: SecretManagerConfig
metadata: {{name: orders, namespace: team-a}}
spec:
  sourceRef: {{kind: GitRepository, name: orders-repo, namespace: flux-system}}
  provider:
{provider}
  secrets:
    environment: dev
    prefix: orders
"""
GCP = "    gcp: {projectId: p1, location: us-central1}"
AWS = "    aws: {region: eu-west-1, auth: {authType: irsa, roleArn: 'arn:aws:iam::1:role/r'}}"
AZURE = "    azure: {vaultName: v1, location: westeurope, auth: {authType: workloadIdentity, clientId: c1}}"


def doc(extra: str = "", *, provider: str = GCP, group: str = "octopilot.io") -> str:
    return BASE.format(group=group, provider=provider) + extra


@pytest.mark.parametrize("group", ["microscaler.io", "octopilot.io"])
@pytest.mark.parametrize("provider", [GCP, AWS, AZURE], ids=["gcp", "aws", "azure"])
def test_v1beta1_of_both_groups_loads_with_controller_defaults(group: str, provider: str) -> None:
    [cfg] = parse_config_text(doc(provider=provider, group=group))
    assert cfg.api_version == f"secret-management.{group}/v1beta1"
    assert (cfg.naming, cfg.file_semantics) == ("controller", "controller")


def test_our_api_versions_are_still_accepted_with_our_defaults() -> None:
    text = doc().replace("secret-management.octopilot.io/v1beta1", "secret-manager.microscaler.io/v1alpha1")
    [cfg] = parse_config_text(text)
    assert (cfg.naming, cfg.file_semantics) == ("functions", "functions")
    [legacy] = parse_config_text(doc().replace("octopilot.io/v1beta1", "microscaler.io/v1"))
    assert legacy.naming == "controller"


def test_explicit_naming_overrides_either_way() -> None:
    [cfg] = parse_config_text(doc("  naming: functions\n  fileSemantics: functions\n"))
    assert (cfg.naming, cfg.file_semantics) == ("functions", "functions")
    own = doc("  naming: controller\n").replace("secret-management.octopilot.io/v1beta1",
                                                   "secret-manager.microscaler.io/v1alpha1")  # fmt: skip
    [cfg] = parse_config_text(own)
    assert (cfg.naming, cfg.file_semantics) == ("controller", "functions")


def test_suspend_git_pulls_skips_scheduled_resync_only() -> None:
    text = doc("  suspendGitPulls: true\n").replace(
        "namespace: flux-system}", "namespace: flux-system, url: 'https://git.invalid/acme/orders.git'}"
    )
    [cfg] = parse_config_text(text)
    assert cfg.suspend_git_pulls is True and cfg.suspend is False
    status, body = resync([cfg], token_resolver=lambda c: None, cache_dir="")
    # Nothing was fetched (the URL cannot resolve): the config was skipped before any fetch.
    assert status == 200 and body["results"] == [
        {"configs": ["orders"], "status": "skipped", "reason": "spec.suspendGitPulls"}
    ]


def test_kustomize_path_wins_over_base_path_as_in_the_reconciler() -> None:
    text = doc().replace("    prefix: orders\n", "    prefix: orders\n    basePath: apps\n"
                         "    kustomizePath: apps/orders/deployment-configuration/profiles/dev\n")  # fmt: skip
    [cfg] = parse_config_text(text)
    assert cfg.secrets.kustomize_path == "apps/orders/deployment-configuration/profiles/dev"
    assert cfg.secrets.base_path is None
    assert any("basePath has no effect while kustomizePath is set" in w for w in cfg.warnings)


def test_git_credentials_name_is_the_token_secret() -> None:
    text = doc().replace(
        "namespace: flux-system}", "namespace: flux-system, gitCredentials: {name: git-creds, namespace: x}}"
    )
    [cfg] = parse_config_text(text)
    assert cfg.source.token_secret == "git-creds"
    assert any("gitCredentials.namespace has no effect" in w for w in cfg.warnings)


def test_trigger_update_false_only_creates_missing_entries() -> None:
    [cfg] = parse_config_text(doc("  triggerUpdate: false\n"))
    assert cfg.sync.create_only is True
    [default] = parse_config_text(doc())
    assert default.sync.create_only is False


def test_locations_keep_controller_placement_and_warn() -> None:
    [gcp] = parse_config_text(doc())
    assert gcp.provider_options["location"] is None  # the controller's secrets were global
    assert any("gcp.location only labels secrets" in w for w in gcp.warnings)
    [azure] = parse_config_text(doc(provider=AZURE))
    assert any("azure.location has no effect" in w for w in azure.warnings)
    assert azure.provider_options["auth"]["clientId"] == "c1"
    [aws] = parse_config_text(doc(provider=AWS))
    assert aws.provider_options["auth"]["roleArn"] == "arn:aws:iam::1:role/r"


CLUSTER_ONLY = """  gitRepositoryPullInterval: 5m
  reconcileInterval: 1m
  hotReload: {enabled: true, configMapName: c}
  logging: {secrets: DEBUG, sops: WARN}
  notifications:
    fluxcd: {providerRef: {name: slack}}
    argocd: {subscriptions: [{channel: '#a', service: slack, trigger: drift}]}
  otel: {type: otlp, endpoint: 'http://otel:4317'}
"""


def test_cluster_only_fields_are_accepted_with_a_warning_each() -> None:
    [cfg] = parse_config_text(doc(CLUSTER_ONLY))
    for name in (
        "gitRepositoryPullInterval",
        "reconcileInterval",
        "hotReload",
        "logging",
        "notifications",
        "otel",
    ):
        assert any(f"spec.{name} has no effect" in w for w in cfg.warnings), name


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("  otel: {endpoint: x}\n", "spec.otel.type"),
        ("  logging: {secrets: LOUD}\n", "spec.logging.secrets"),
        ("  notifications: {fluxcd: {providerRef: {}}}\n", "spec.notifications.fluxcd.providerRef.name"),
        ("  hotReload: {enabled: true, extra: 1}\n", "spec.hotReload.extra"),
        ("  suspendGitPulls: 'yes'\n", "spec.suspendGitPulls"),
    ],
)
def test_invalid_controller_fields_are_refused_by_field(extra: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(doc(extra))
    assert info.value.field == field


def test_fork_requires_and_checks_locations() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(doc(provider="    gcp: {projectId: p1}"))
    assert info.value.field == "spec.provider.gcp.location"
    with pytest.raises(ConfigError) as info:
        parse_config_text(doc(provider="    azure: {vaultName: v, location: West-Europe}"))
    assert info.value.field == "spec.provider.azure.location"
    # The microscaler CRD has no location at all: optional there.
    [cfg] = parse_config_text(doc(provider="    gcp: {projectId: p1}", group="microscaler.io"))
    assert cfg.provider == "gcp"
