"""The Secret Manager Controller's CRD (`SecretManagerConfig`, v1beta1), as its API server checked it.

A document under the controller's API groups must be refused exactly when the controller's
Kubernetes API server would have refused it, or teams moving over would find out about a bad
manifest only after switching. This module states the constraints of the controller's CRD
(`config/crd/secretmanagerconfig.yaml` in microscaler/secret-manager-controller at 4a200ca7 and
octopilot/secret-manager-controller at f8024ef9): required fields, types, enums, patterns and the
one-provider rule. The two groups differ only in the fork's required, pattern-checked
`provider.gcp.location` / `provider.azure.location` and its `provider.aws.region` pattern.

It checks only the fields the CRD declares: our own extensions (`sourceRef.url`, `sync`, ...)
are left to `core.config`'s schema, which also refuses unknown fields. Blocks that only the
controller reads (`otel`, `logging`, `hotReload`, `gitCredentials`, `notifications.fluxcd` and
`.argocd`) are "closed" here: an unknown field in them is an error, as the API server's strict
field validation made it (`notifications` itself is open: it also holds our `destinations`). As the API server does, a null value of a non-nullable field counts as
absent (Kubernetes prunes it before defaulting).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError

MICROSCALER_GROUP = "secret-management.microscaler.io"
OCTOPILOT_GROUP = "secret-management.octopilot.io"
CONTROLLER_GROUPS = (MICROSCALER_GROUP, OCTOPILOT_GROUP)
#: The only version the controller's CRD serves.
SERVED_VERSION = "v1beta1"

LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
#: The fork's patterns (its CRD, provider.{aws.region, azure.location, gcp.location}).
AWS_REGION_PATTERN = r"^[a-z]{2}-[a-z]+-[0-9]+$|^[a-z]{2}-gov-[a-z]+-[0-9]+$|^[a-z]{2}-iso-[a-z]+-[0-9]+$|^cn-[a-z]+-[0-9]+$|^local$"
AZURE_LOCATION_PATTERN = r"^[a-z]+[0-9]*$"
GCP_LOCATION_PATTERN = r"^[a-z]+-[a-z]+[0-9]+$"


@dataclass(frozen=True)
class Node:
    """One schema node of the CRD: `type` is string|boolean|integer|object|array."""

    type: str
    props: dict[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Node | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    nullable: bool = False
    #: Unknown fields are errors (blocks only the controller reads; ours are checked elsewhere).
    closed: bool = False
    #: Exactly one of these properties must be set (the CRD's `oneOf` of `required`).
    one_of: tuple[str, ...] = ()


STRING = Node("string")
NULLABLE_STRING = Node("string", nullable=True)
BOOLEAN = Node("boolean")


def _obj(props: dict[str, Node], *required: str, nullable: bool = False, closed: bool = False) -> Node:
    return Node("object", props=props, required=required, nullable=nullable, closed=closed)


def _schema(fork: bool) -> Node:
    """The CRD's `spec` schema; `fork` adds the octopilot CRD's location fields and patterns."""
    aws = {
        "auth": _obj(
            {"authType": Node("string", enum=("irsa",)), "roleArn": STRING},
            "authType",
            "roleArn",
            nullable=True,
        ),
        "region": Node("string", pattern=AWS_REGION_PATTERN if fork else None),
    }
    azure = {
        "auth": _obj(
            {"authType": Node("string", enum=("workloadIdentity",)), "clientId": STRING},
            "authType",
            "clientId",
            nullable=True,
        ),
        "vaultName": STRING,
    }
    gcp = {
        "auth": _obj(
            {"authType": Node("string", enum=("workloadIdentity",)), "serviceAccountEmail": STRING},
            "authType",
            "serviceAccountEmail",
            nullable=True,
        ),
        "projectId": STRING,
    }
    if fork:
        azure["location"] = Node("string", pattern=AZURE_LOCATION_PATTERN)
        gcp["location"] = Node("string", pattern=GCP_LOCATION_PATTERN)
    level = Node("string", enum=LOG_LEVELS)
    subscription = _obj(
        {"channel": STRING, "service": STRING, "trigger": STRING}, "channel", "service", "trigger"
    )
    return _obj(
        {
            "configs": _obj(
                {
                    "appConfigEndpoint": NULLABLE_STRING,
                    "enabled": BOOLEAN,
                    "parameterPath": NULLABLE_STRING,
                    "store": Node("string", enum=("secretManager", "ParameterManager", None), nullable=True),
                },
                nullable=True,
            ),
            "diffDiscovery": BOOLEAN,
            "gitRepositoryPullInterval": STRING,
            "hotReload": _obj(
                {"configMapName": STRING, "configMapNamespace": NULLABLE_STRING, "enabled": BOOLEAN},
                nullable=True,
                closed=True,
            ),
            "logging": _obj(
                {
                    k: level
                    for k in (
                        "diffDiscovery",
                        "git",
                        "kustomize",
                        "properties",
                        "provider",
                        "reconciliation",
                        "secrets",
                        "sops",
                    )
                },
                nullable=True,
                closed=True,
            ),
            "notifications": _obj(
                {
                    "argocd": _obj(
                        {"subscriptions": Node("array", items=subscription)},
                        "subscriptions",
                        nullable=True,
                        closed=True,
                    ),
                    "fluxcd": _obj(
                        {
                            "providerRef": _obj(
                                {"name": STRING, "namespace": NULLABLE_STRING}, "name", closed=True
                            )
                        },
                        "providerRef",
                        nullable=True,
                        closed=True,
                    ),
                },
                nullable=True,
                # Open: `destinations` (ours) sits beside fluxcd/argocd; core.config's schema
                # still refuses any other field, naming it.
            ),
            "otel": _obj(
                {
                    k: STRING
                    for k in ("apiKey", "endpoint", "environment", "serviceName", "serviceVersion", "site")
                }
                | {"type": Node("string", enum=("otlp", "datadog"))},
                "type",
                nullable=True,
                closed=True,
            ),
            "provider": Node(
                "object",
                props={
                    "aws": _obj(aws, "region"),
                    "azure": _obj(azure, *(("location",) if fork else ()), "vaultName"),
                    "gcp": _obj(gcp, *(("location",) if fork else ()), "projectId"),
                    "type": Node("string", enum=("gcp", "aws", "azure")),
                },
                one_of=("gcp", "aws", "azure"),
            ),
            "reconcileInterval": STRING,
            "secrets": _obj(
                {
                    "basePath": NULLABLE_STRING,
                    "environment": STRING,
                    "kustomizePath": NULLABLE_STRING,
                    "prefix": NULLABLE_STRING,
                    "suffix": NULLABLE_STRING,
                },
                "environment",
            ),
            "sourceRef": _obj(
                {
                    "gitCredentials": _obj(
                        {"name": STRING, "namespace": NULLABLE_STRING}, "name", nullable=True, closed=True
                    ),
                    "kind": STRING,
                    "name": STRING,
                    "namespace": STRING,
                },
                "name",
                "namespace",
            ),
            "suspend": BOOLEAN,
            "suspendGitPulls": BOOLEAN,
            "triggerUpdate": BOOLEAN,
        },
        "provider",
        "secrets",
        "sourceRef",
    )


SPEC_SCHEMAS = {MICROSCALER_GROUP: _schema(fork=False), OCTOPILOT_GROUP: _schema(fork=True)}

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "object": (dict,),
    "array": (list,),
}

ErrorFactory = Callable[[tuple[str, ...], str], ConfigError]


def is_served(api_version: str) -> bool:
    """True for ``{controller group}/v1beta1``: the documents the controller's CRD validated."""
    group, _, version = api_version.partition("/")
    return group in CONTROLLER_GROUPS and version == SERVED_VERSION


def check_document(doc: dict[str, Any], error: ErrorFactory) -> None:
    """Raise (via `error(where, message)`) where the controller's CRD would refuse `doc`."""
    group = str(doc.get("apiVersion", "")).partition("/")[0]
    spec = doc.get("spec")
    if spec is None:
        raise error(("spec",), "is required")
    _check(spec, SPEC_SCHEMAS[group], ("spec",), error)


def _present(value: dict[str, Any], key: str, node: Node | None) -> bool:
    return key in value and (value[key] is not None or (node is not None and node.nullable))


def _check(value: Any, node: Node, where: tuple[str, ...], error: ErrorFactory) -> None:
    if value is None:
        return  # nullable, or pruned like the API server does; `required` is checked by the parent
    if not isinstance(value, _TYPES[node.type]) or (node.type == "integer" and isinstance(value, bool)):
        raise error(where, f"must be a {node.type} (the controller's CRD)")
    if node.enum is not None and value not in node.enum:
        shown = ", ".join(str(e) for e in node.enum if e is not None)
        raise error(where, f"must be one of {shown} (the controller's CRD), got {value!r}")
    if node.pattern is not None and not re.search(node.pattern, value):
        raise error(where, f"does not match the controller's CRD pattern {node.pattern}")
    if node.type == "array" and node.items is not None:
        for i, item in enumerate(value):
            if item is None:
                raise error((*where, str(i)), "must not be null")
            _check(item, node.items, (*where, str(i)), error)
    if node.type != "object":
        return
    for key in node.required:
        if not _present(value, key, node.props.get(key)):
            raise error((*where, key), "is required (the controller's CRD)")
    if node.one_of:
        chosen = [k for k in node.one_of if _present(value, k, node.props.get(k))]
        if len(chosen) != 1:
            which = "none" if not chosen else " and ".join(chosen)
            raise error(where, f"must set exactly one of {', '.join(node.one_of)} (got {which})")
    for key, item in value.items():
        sub = node.props.get(str(key))
        if sub is None:
            if node.closed:
                raise error((*where, str(key)), f"unknown field (known fields: {', '.join(node.props)})")
            continue
        _check(item, sub, (*where, str(key)), error)
