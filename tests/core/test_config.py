"""SecretManagerConfig validation: the seed's manifests load; mistakes name doc, line and field."""

from __future__ import annotations

import pytest

from core.config import parse_config_text
from core.errors import ConfigError

HEAD = """apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: {name}
"""

SEED_AWS = (
    HEAD.format(name="my-service-config")
    + """spec:
  sourceRef:
    kind: GitRepository
    name: my-repo
    namespace: flux-system
  provider:
    type: aws
    aws:
      region: us-east-1
      auth:
        authType: Irsa
        roleArn: arn:aws:iam::123456789012:role/secret-manager-role
  secrets:
    environment: dev
    kustomizePath: microservices/my-service/profiles/dev
    prefix: my-service
    suffix: -prod
  configs:
    enabled: true
    parameterPath: /my-service/dev
    files:
      - application.properties
      - application.config.env
      - application.config.yaml
"""
)

SEED_GCP = (
    HEAD.format(name="gcp")
    + """spec:
  sourceRef: {kind: GitRepository, name: my-repo, namespace: flux-system}
  provider:
    type: gcp
    gcp:
      projectId: my-project
      auth:
        authType: WorkloadIdentity
        serviceAccountEmail: secret-manager@my-project.iam.gserviceaccount.com
  secrets:
    environment: dev
    kustomizePath: microservices/my-service/profiles/dev
  configs:
    store: SecretManager
"""
)

SEED_AZURE = (
    HEAD.format(name="azure")
    + """spec:
  sourceRef: {kind: GitRepository, name: my-repo, namespace: flux-system}
  provider:
    type: azure
    azure:
      vaultName: my-vault
      auth:
        authType: WorkloadIdentity
        clientId: "12345678-1234-1234-1234-123456789012"
  secrets:
    environment: dev
    kustomizePath: microservices/my-service/profiles/dev
  configs:
    enabled: true
    appConfigEndpoint: https://my-app-config.azconfig.io
"""
)


def test_seed_manifests_load_unchanged() -> None:
    configs = parse_config_text("---\n".join([SEED_AWS, SEED_GCP, SEED_AZURE]), "seed.yaml")
    aws, gcp, azure = configs
    assert (aws.provider, gcp.provider, azure.provider) == ("aws", "gcp", "azure")
    assert aws.secrets.kustomize_path == "microservices/my-service/profiles/dev"
    assert aws.secrets.suffix == "-prod" and aws.configs.parameter_path == "/my-service/dev"
    assert aws.provider_options["region"] == "us-east-1"
    assert gcp.configs.enabled is False and gcp.configs.store == "SecretManager"
    assert azure.configs.app_config_endpoint == "https://my-app-config.azconfig.io"
    assert aws.sync.prune is False and aws.sync.drift == "report"


def test_controller_api_group_and_cluster_fields() -> None:
    text = SEED_GCP.replace("secret-manager.microscaler.io/v1alpha1", "secret-management.microscaler.io/v1")
    text = text.replace("spec:\n", "spec:\n  gitRepositoryPullInterval: 5m\n  diffDiscovery: false\n", 1)
    [cfg] = parse_config_text(text)
    assert cfg.sync.drift == "ignore"
    assert any("gitRepositoryPullInterval" in w and "no effect" in w for w in cfg.warnings)


def test_provider_type_inferred_from_single_section() -> None:
    [cfg] = parse_config_text(SEED_GCP.replace("    type: gcp\n", ""))
    assert cfg.provider == "gcp" and cfg.provider_options["projectId"] == "my-project"


@pytest.mark.parametrize(
    ("edit", "field", "line", "words"),
    [
        (
            ("    environment: dev\n", "    environment: dev\n    enviroment: prod\n"),
            "spec.secrets.enviroment",
            19,
            "unknown field",
        ),
        (("    environment: dev\n", ""), "spec.secrets.environment", None, "is required"),
        (("      region: us-east-1\n", "      region: 5\n"), "spec.provider.aws.region", 13, "must be a str"),
        (("    enabled: true\n", "    enabled: yes-please\n"), "spec.configs.enabled", 23, "must be a bool"),
        (("    type: aws\n", "    type: oracle\n"), "spec.provider.type", 11, "must be one of"),
        (
            ("  provider:\n", "  provider:\n    gcp: {projectId: p}\n"),
            "spec.provider.gcp",
            None,
            "does not match",
        ),
    ],
)
def test_errors_name_document_field_and_line(edit, field, line, words) -> None:  # type: ignore[no-untyped-def]
    text = SEED_GCP + "---\n" + SEED_AWS.replace(*edit)
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "configs.yaml")
    err = info.value
    assert err.field == field and err.path == "configs.yaml"
    assert "document 2 (my-service-config)" in str(err) and words in str(err)
    if line:
        assert err.line == line + SEED_GCP.count("\n") + 1


def test_duplicate_names_and_broken_yaml() -> None:
    with pytest.raises(ConfigError, match="used by more than one document"):
        parse_config_text(SEED_AWS + "---\n" + SEED_AWS)
    with pytest.raises(ConfigError) as info:
        parse_config_text("apiVersion: [\n", "c.yaml")
    assert info.value.line == 2


def test_git_source_ref() -> None:
    text = SEED_AWS.replace(
        "    kind: GitRepository\n    name: my-repo\n    namespace: flux-system\n",
        "    url: https://github.com/acme/app.git\n    branch: main\n",
    )
    [cfg] = parse_config_text(text)
    assert cfg.source.url == "https://github.com/acme/app.git" and cfg.source.branch == "main"
