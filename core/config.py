"""SecretManagerConfig: the controller's CRD shape, validated strictly.

Manifests written for the Kubernetes controller load unchanged: its CRD's only version,
`v1beta1`, under both its API groups (`secret-management.microscaler.io`, and
`secret-management.octopilot.io` of the fork), is checked against that CRD's own constraints
(core/crd.py) and then against ours. Unknown fields are errors naming the document and the
field. Every CRD field is accepted: with its serverless meaning where it has one
(`suspend`, `suspendGitPulls`, `diffDiscovery`, `triggerUpdate`, `sourceRef.gitCredentials`,
`kustomizePath` over `basePath`, the `auth` blocks) and otherwise with a "no effect here"
warning (docs/migration.md lists them all).

Documents under the controller's API groups default to the controller's names and file
semantics (`naming: controller`, `fileSemantics: controller`); our own API version keeps ours.
Both can be chosen explicitly in the spec either way.

The provider-specific sections (`spec.provider.aws|gcp|azure|local`) are declared by the
store kinds themselves: each kind's options dataclass, named in `core.registry`, gives its
fields, defaults and cross-field rules (`core.options`), checked here at load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from core import crd, options, registry
from core.errors import ConfigError
from core.parsers.limits import MAX_FILE_BYTES, LimitError, check_yaml

OWN_API_VERSION = "secret-manager.microscaler.io/v1alpha1"
API_VERSIONS = (
    OWN_API_VERSION,
    "secret-management.microscaler.io/v1",
    *(f"{group}/{crd.SERVED_VERSION}" for group in crd.CONTROLLER_GROUPS),
)
#: `spec.naming` / `spec.fileSemantics`: the controller's behaviour, or ours.
CONTROLLER = "controller"
FUNCTIONS = "functions"
KIND = "SecretManagerConfig"
DEFAULT_CONFIG_FILES = (
    "application.properties",
    "application.config.env",
    "application.config.yaml",
    "application.config.yml",
    "application.config.json",
)
SECRET_FILES = (
    "application.secrets.env",
    "application.secrets.yaml",
    "application.secrets.yml",
    "application.secrets.json",
)


# -- a very small schema language ----------------------------------------------------------
@dataclass(frozen=True)
class F:
    """A field: `type` is str|bool|int|float|list|map|obj|any; `fields` for obj, `item` for list."""

    type: str
    required: bool = False
    default: Any = None
    enum: tuple[str, ...] | None = None
    fields: dict[str, F] | None = None
    item: F | None = None
    #: accepted for compatibility but without effect here: message for the warning
    ignored: str | None = None


def obj(fields: dict[str, F], **kw: Any) -> F:
    return F("obj", fields=fields, **kw)


STR = F("str")
BOOL_FALSE = F("bool", default=False)
STR_LIST = F("list", item=F("str"))

#: `spec.notifications.destinations[].type` and `.events` (core/results/notify.py).
NOTIFY_TYPES = ("slack", "teams", "webhook")
NOTIFY_EVENTS = ("errors", "drift", "changes")
NOTIFY_DEFAULT_EVENTS = ("errors", "drift")
CONTROLLER_ONLY = "has no effect in secret-manager-functions (a Kubernetes controller setting)"
#: ObjectMeta fields a manifest exported from a cluster may carry; none of them matters here.
_CLUSTER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "generateName",
    "finalizers",
    "ownerReferences",
    "selfLink",
)

SCHEMA = obj(
    {
        "apiVersion": F("str", required=True, enum=API_VERSIONS),
        "kind": F("str", required=True, enum=(KIND,)),
        "metadata": obj(
            {
                "name": F("str", required=True),
                "namespace": STR,
                "labels": F("map"),
                "annotations": F("map"),
                **{k: F("any") for k in _CLUSTER_METADATA},
            },
            required=True,
        ),
        "spec": obj(
            {
                "sourceRef": obj(
                    {
                        "kind": F(
                            "str",
                            default="GitRepository",
                            enum=("GitRepository", "Git", "Application", "OCIRepository", "Bucket"),
                        ),
                        "name": STR,
                        "namespace": STR,
                        "url": STR,
                        "branch": STR,
                        "tags": BOOL_FALSE,
                        "tokenSecret": STR,
                        "username": STR,
                        # The controller's Kubernetes secret of Git credentials: here, a
                        # secret of that name in the cloud's store holds the token.
                        "gitCredentials": obj({"name": STR, "namespace": STR}),
                    }
                ),
                "provider": obj(
                    {
                        "type": F("str", enum=registry.PROVIDERS),
                        # The chosen provider's section is checked in _build against the
                        # schema its store kinds declare (core.options); others must be absent.
                        **{p: F("any") for p in registry.PROVIDERS},
                    },
                    required=True,
                ),
                "secrets": obj(
                    {
                        "environment": F("str", required=True),
                        "kustomizePath": STR,
                        "basePath": STR,
                        "prefix": STR,
                        "suffix": STR,
                        "nameTemplate": STR,
                        "requireEncrypted": BOOL_FALSE,
                    },
                    required=True,
                ),
                "configs": obj(
                    {
                        "enabled": BOOL_FALSE,
                        "store": F("str", enum=("SecretManager", "secretManager", "ParameterManager")),
                        "parameterPath": STR,
                        "appConfigEndpoint": STR,
                        "files": STR_LIST,
                        "nameTemplate": STR,
                    }
                ),
                "sync": obj(
                    {
                        "prune": BOOL_FALSE,
                        "adopt": BOOL_FALSE,
                        "createOnly": BOOL_FALSE,
                        "maxDeleteFraction": F("float", default=0.5),
                        "drift": F("str", default="report", enum=("report", "correct", "ignore")),
                        "concurrency": F("int"),
                    }
                ),
                "decryption": obj(
                    {
                        "ageKeySecret": STR,
                    }
                ),
                "webhook": obj(
                    {
                        "provider": F("str", enum=("github", "gitlab", "bitbucket", "gitea", "generic")),
                        "secret": STR,
                        "secretRef": STR,
                    }
                ),
                # Where the outcome of a push (and a pull request's plan) is posted: see
                # core/results/statuses/targets.py and docs/results.md.
                "statuses": F(
                    "list",
                    item=obj(
                        {
                            "provider": F(
                                "str", required=True, enum=("github", "gitlab", "bitbucket", "gitea")
                            ),
                            "repository": STR,
                            "apiUrl": STR,
                            "tokenSecret": STR,
                            "app": obj({"id": F("any"), "privateKeySecret": STR, "installationId": F("int")}),
                            "checks": F("bool", default=True),
                            "targetUrl": STR,
                            "pending": F("bool", default=True),
                        }
                    ),
                ),
                "pullRequests": obj({"preview": F("bool", default=True), "forks": BOOL_FALSE}),
                "suspend": BOOL_FALSE,
                "suspendGitPulls": BOOL_FALSE,
                "diffDiscovery": F("bool", default=True),
                "triggerUpdate": F("bool", default=True),
                "naming": F("str", enum=(CONTROLLER, FUNCTIONS)),
                "fileSemantics": F("str", enum=(CONTROLLER, FUNCTIONS)),
                "gitRepositoryPullInterval": F("any", ignored=CONTROLLER_ONLY),
                "reconcileInterval": F("any", ignored=CONTROLLER_ONLY),
                "hotReload": F("any", ignored=CONTROLLER_ONLY),
                "logging": F("any", ignored=CONTROLLER_ONLY),
                # Where a run's outcome is sent (core/results/notify.py, docs/notifications.md);
                # the controller's fluxcd/argocd blocks are accepted with a warning (_notifications).
                "notifications": obj(
                    {
                        "destinations": F(
                            "list",
                            item=obj(
                                {
                                    "type": F("str", required=True, enum=NOTIFY_TYPES),
                                    "urlSecret": F("str", required=True),
                                    "signingSecret": STR,
                                    "events": F("list", item=F("str", enum=NOTIFY_EVENTS)),
                                }
                            ),
                        ),
                        "fluxcd": F("any"),
                        "argocd": F("any"),
                    }
                ),
                "otel": F("any", ignored=CONTROLLER_ONLY),
            },
            required=True,
        ),
        "status": F("any"),
    }
)

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "list": (list,),
    "map": (dict,),
    "obj": (dict,),
}


class _Validator:
    def __init__(self, doc_name: str, lines: dict[tuple[str, ...], int], path: str | None) -> None:
        self.doc_name = doc_name
        self.lines = lines
        self.path = path
        self.warnings: list[str] = []

    def error(self, where: tuple[str, ...], message: str) -> ConfigError:
        line = None
        for depth in range(len(where), -1, -1):
            line = self.lines.get(where[:depth])
            if line:
                break
        return ConfigError(
            f"{self.doc_name}: {message}", path=self.path, line=line, field=".".join(where) or None
        )

    def check(self, value: Any, spec: F, where: tuple[str, ...], absent: bool = False) -> Any:
        """Validate `value` against `spec`; `absent` fills defaults of a missing object."""
        if spec.ignored is not None:
            if value is not None:
                self.warnings.append(f"{self.doc_name}: {'.'.join(where)} {spec.ignored}")
            return value
        if value is None:
            if spec.required and not absent:
                raise self.error(where, "is required")
            if spec.type == "obj":
                return self.check({}, spec, where, absent=True)
            if spec.type == "list" and spec.default is None:
                return []
            if spec.type == "map" and spec.default is None:
                return {}
            return spec.default
        if spec.type == "any":
            return value
        ok = _PY_TYPES[spec.type]
        if not isinstance(value, ok) or (spec.type in ("int", "float") and isinstance(value, bool)):
            raise self.error(where, f"must be a {spec.type}, got {type(value).__name__}")
        if spec.enum and value not in spec.enum:
            raise self.error(where, f"must be one of {', '.join(spec.enum)}, got {value!r}")
        if spec.type == "list":
            assert spec.item is not None
            return [self.check(v, spec.item, (*where, str(i))) for i, v in enumerate(value)]
        if spec.type == "map":
            for k, v in value.items():
                if not isinstance(v, (str, int, float, bool)):
                    raise self.error((*where, str(k)), "map values must be scalars")
            return {str(k): str(v) for k, v in value.items()}
        if spec.type == "obj":
            assert spec.fields is not None
            unknown = [k for k in value if k not in spec.fields]
            if unknown:
                known = ", ".join(spec.fields)
                raise self.error((*where, str(unknown[0])), f"unknown field (known fields: {known})")
            return {k: self.check(value.get(k), f, (*where, k), absent) for k, f in spec.fields.items()}
        return value


# -- the typed model -------------------------------------------------------------------
@dataclass
class SourceSpec:
    kind: str
    name: str | None
    namespace: str | None
    url: str | None
    branch: str | None
    tags: bool
    token_secret: str | None
    username: str | None


@dataclass
class SecretsSpec:
    environment: str
    kustomize_path: str | None
    base_path: str | None
    prefix: str | None
    suffix: str | None
    name_template: str | None
    require_encrypted: bool


@dataclass
class ConfigsSpec:
    enabled: bool
    store: str  # "SecretManager" | "ParameterManager" (GCP only)
    parameter_path: str | None
    app_config_endpoint: str | None
    files: list[str]
    name_template: str | None


@dataclass
class SyncPolicy:
    prune: bool
    adopt: bool
    create_only: bool
    max_delete_fraction: float
    drift: str  # report | correct | ignore
    concurrency: int | None


@dataclass(frozen=True)
class NotifyDestination:
    """One place a run's outcome is sent: `url_secret` and `signing_secret` are the *names* of
    secrets in the config's secret store (the URL of a chat webhook is itself a credential)."""

    type: str  # slack | teams | webhook
    url_secret: str
    signing_secret: str | None
    #: Which runs are sent: those with errors, drift and/or changes.
    events: tuple[str, ...]
    #: Where it was declared, for errors at send time: ``spec.notifications.destinations[0]``.
    field: str = ""


@dataclass
class SecretManagerConfig:
    name: str
    namespace: str | None
    provider: str  # aws | gcp | azure | local
    #: The provider's section with defaults applied, as plain data (see `core.options`).
    provider_options: dict[str, Any]
    source: SourceSpec
    secrets: SecretsSpec
    configs: ConfigsSpec
    sync: SyncPolicy
    decryption: dict[str, Any]
    webhook: dict[str, Any]
    suspend: bool
    diff_discovery: bool
    #: `spec.suspendGitPulls`: scheduled resyncs skip this config; pushes still sync it.
    suspend_git_pulls: bool = False
    api_version: str = OWN_API_VERSION
    #: `controller` (the controller's names per store) or `functions` (ours, see README Naming).
    naming: str = FUNCTIONS
    #: `controller`: its files and their merge rules (docs/migration.md); `functions`: ours.
    file_semantics: str = FUNCTIONS
    #: Where the document came from: "file.yaml#2".
    origin: str = ""
    warnings: list[str] = field(default_factory=list)
    #: Typed options the provider's kinds share (`core.stores.providers`).
    provider_settings: Any = None
    #: Typed options of each of the provider's store kinds, by kind id.
    kind_options: dict[str, Any] = field(default_factory=dict)
    #: `spec.notifications.destinations`, checked at load.
    notifications: list[NotifyDestination] = field(default_factory=list)
    #: `spec.statuses`: where outcomes are posted (`core.results.statuses.targets.Target`).
    statuses: list[Any] = field(default_factory=list)
    #: `spec.pullRequests`: ``preview`` (plan pull requests) and ``forks`` (also from forks).
    pull_requests: dict[str, Any] = field(default_factory=lambda: {"preview": True, "forks": False})

    def options_for(self, kind: str) -> Any:
        """The typed options of store kind `kind` (validated when the config was loaded)."""
        return self.kind_options[kind]

    @property
    def config_files(self) -> tuple[str, ...]:
        return tuple(self.configs.files) or DEFAULT_CONFIG_FILES


def _line_map(node: yaml.Node, where: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    out.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = (*where, str(key.value))
            out[k] = key.start_mark.line + 1
            _line_map(value, k, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _line_map(value, (*where, str(i)), out)


def parse_config_text(text: str, path: str = "<config>") -> list[SecretManagerConfig]:
    """Every SecretManagerConfig in a (multi-document) YAML text; errors name doc and field.

    Loading is hardened like every other parser (core/parsers/limits.py): depth, aliases and
    key types are checked before anything is built, a key written twice in one mapping is an
    error (last-wins would silently plan for the second `environment:`), and any tag outside
    the safe schema is a ConfigError with its line, never a traceback."""
    try:
        check_yaml(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except LimitError as exc:
        raise ConfigError(exc.message, path=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", path=path, line=mark.line + 1 if mark else None
        ) from None
    configs: list[SecretManagerConfig] = []
    for index, node in enumerate(nodes):
        if node is None:
            continue
        _reject_duplicate_keys(node, (), path)
        data = _construct(node, path)
        lines: dict[tuple[str, ...], int] = {}
        _line_map(node, (), lines)
        meta = data.get("metadata") if isinstance(data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        doc_name = f"document {index + 1}" + (f" ({name})" if isinstance(name, str) and name else "")
        v = _Validator(doc_name, lines, path)
        if not isinstance(data, dict):
            raise v.error((), "a SecretManagerConfig document must be a mapping")
        if crd.is_served(str(data.get("apiVersion", ""))) and data.get("kind") == KIND:
            crd.check_document(data, v.error)
        clean = v.check(data, SCHEMA, ())
        configs.append(_build(clean, data, v, f"{path}#{index + 1}"))
    names = [c.name for c in configs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(
            f"metadata.name {sorted(dupes)[0]!r} is used by more than one document",
            path=path,
            field="metadata.name",
        )
    return configs


def _reject_duplicate_keys(node: yaml.Node, where: tuple[str, ...], path: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = str(key.value)
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if k in seen:
                    raise ConfigError(
                        f"key {k!r} is defined twice (first on line {seen[k]})",
                        path=path,
                        line=line,
                        field=".".join((*where, k)),
                    )
                seen[k] = line
            _reject_duplicate_keys(value, (*where, k), path)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _reject_duplicate_keys(value, (*where, str(i)), path)


def _construct(node: yaml.Node, path: str) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:  # e.g. !!python/object/apply: not in the safe schema
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot load this value"
        raise ConfigError(
            f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
        ) from None
    except (ValueError, TypeError) as exc:  # an over-long integer, an unhashable merged key...
        raise ConfigError(
            f"invalid YAML value ({type(exc).__name__})", path=path, line=node.start_mark.line + 1
        ) from None
    finally:
        loader.dispose()


def _build(doc: dict[str, Any], raw: dict[str, Any], v: _Validator, origin: str) -> SecretManagerConfig:
    spec = doc["spec"]
    prov = spec["provider"]
    raw_prov = raw["spec"]["provider"] or {}
    present = [p for p in registry.PROVIDERS if p in raw_prov]
    ptype = prov.get("type")
    if not ptype:
        if len(present) != 1:
            raise v.error(
                ("spec", "provider", "type"), "is required (one of " + ", ".join(registry.PROVIDERS) + ")"
            )
        ptype = present[0]
    others = [p for p in present if p != ptype]
    if others:
        raise v.error(("spec", "provider", others[0]), f"does not match provider.type {ptype!r}")
    # The chosen provider's section is checked strictly (its required fields must be there),
    # then its stores' cross-field rules, so a bad option fails here, not at the first write.
    where = ("spec", "provider", ptype)
    prov[ptype] = v.check(raw_prov.get(ptype) or {}, options.provider_schema(ptype), where)
    src = spec["sourceRef"]
    secrets = spec["secrets"]
    configs = spec["configs"]
    store = configs["store"] or "SecretManager"
    if store == "secretManager":
        store = "SecretManager"
    if ptype == "gcp" and store == "ParameterManager" and not configs["enabled"]:
        v.warnings.append(
            f"{v.doc_name}: configs.store=ParameterManager has no effect while configs.enabled is false"
        )
    if secrets["kustomizePath"] and secrets["basePath"]:
        # The controller's reconciler takes kustomizePath first and never reads basePath then.
        v.warnings.append(f"{v.doc_name}: spec.secrets.basePath has no effect while kustomizePath is set")
        secrets["basePath"] = None
    controller_group = doc["apiVersion"].partition("/")[0] in crd.CONTROLLER_GROUPS
    default_mode = CONTROLLER if controller_group else FUNCTIONS
    if controller_group and ptype == "gcp" and prov["gcp"].get("location"):
        # The fork only labels its (global, automatically replicated) secrets with the location.
        v.warnings.append(
            f"{v.doc_name}: spec.provider.gcp.location only labels secrets, as in the controller; "
            "they stay global (set parameterManager.location or use our API version for regional secrets)"
        )
        prov["gcp"] = {**prov["gcp"], "location": None}
    typed = options.load_provider_options(ptype, prov[ptype])
    for field_path, problem in typed.problems:
        raise v.error((*where, *field_path.split(".")), problem)
    token_secret = src["tokenSecret"]
    credentials = src["gitCredentials"]
    if credentials.get("name"):
        token_secret = token_secret or credentials["name"]
        if credentials.get("namespace"):
            v.warnings.append(
                f"{v.doc_name}: spec.sourceRef.gitCredentials.namespace has no effect here "
                "(the Git token is read from the secret named gitCredentials.name in the cloud's store)"
            )
    sync = spec["sync"]
    if not spec["triggerUpdate"]:
        sync["createOnly"] = True  # the controller then only created missing secrets
    if not 0 < sync["maxDeleteFraction"] <= 1:
        raise v.error(("spec", "sync", "maxDeleteFraction"), "must be in (0, 1]")
    diff = spec["diffDiscovery"]
    drift = sync["drift"] if diff else "ignore"
    from core.results.statuses.targets import load_targets

    status_targets, status_problems = load_targets(spec["statuses"], src["url"])
    for field_path, problem in status_problems:
        raise v.error(("spec", "statuses", *field_path.split(".")), problem)
    return SecretManagerConfig(
        name=doc["metadata"]["name"],
        namespace=doc["metadata"]["namespace"],
        provider=ptype,
        provider_options=prov[ptype],
        source=SourceSpec(
            kind=src["kind"],
            name=src["name"],
            namespace=src["namespace"],
            url=src["url"],
            branch=src["branch"],
            tags=src["tags"],
            token_secret=token_secret,
            username=src["username"],
        ),
        secrets=SecretsSpec(
            environment=secrets["environment"],
            kustomize_path=_clean_path(secrets["kustomizePath"]),
            base_path=_clean_path(secrets["basePath"]),
            prefix=secrets["prefix"],
            suffix=secrets["suffix"],
            name_template=secrets["nameTemplate"],
            require_encrypted=secrets["requireEncrypted"],
        ),
        configs=ConfigsSpec(
            enabled=configs["enabled"],
            store=store,
            parameter_path=configs["parameterPath"],
            app_config_endpoint=configs["appConfigEndpoint"],
            files=configs["files"],
            name_template=configs["nameTemplate"],
        ),
        sync=SyncPolicy(
            prune=sync["prune"],
            adopt=sync["adopt"],
            create_only=sync["createOnly"],
            max_delete_fraction=float(sync["maxDeleteFraction"]),
            drift=drift,
            concurrency=sync["concurrency"],
        ),
        decryption=spec["decryption"],
        webhook=spec["webhook"],
        suspend=spec["suspend"],
        diff_discovery=diff,
        suspend_git_pulls=spec["suspendGitPulls"],
        api_version=doc["apiVersion"],
        naming=spec["naming"] or default_mode,
        file_semantics=spec["fileSemantics"] or default_mode,
        origin=origin,
        warnings=v.warnings,
        provider_settings=typed.settings,
        kind_options=typed.kinds,
        notifications=_notifications(spec["notifications"], v),
        statuses=status_targets,
        pull_requests=spec["pullRequests"],
    )


def _notifications(spec: dict[str, Any], v: _Validator) -> list[NotifyDestination]:
    """`spec.notifications`: the destinations, with their cross-field rules; the controller's
    blocks only warn (a function has no cluster to resolve a Flux Provider or Argo CD's
    notification services; docs/notifications.md says what to write instead)."""
    if spec.get("fluxcd") is not None:
        v.warnings.append(
            f"{v.doc_name}: spec.notifications has no effect through fluxcd.providerRef here (a function "
            "cannot read a Flux Provider): give the address it points at as a destination under "
            "spec.notifications.destinations, with events: [drift] for the controller's behaviour"
        )
    if spec.get("argocd") is not None:
        v.warnings.append(
            f"{v.doc_name}: spec.notifications has no effect through argocd.subscriptions here (Argo CD's "
            "notification services live in its cluster): give a Slack or Teams webhook as a destination "
            "under spec.notifications.destinations, with events: [drift] for the controller's behaviour"
        )
    out: list[NotifyDestination] = []
    for i, d in enumerate(spec.get("destinations") or []):
        where = ("spec", "notifications", "destinations", str(i))
        if not d["urlSecret"].strip():
            raise v.error((*where, "urlSecret"), "must name a secret in the cloud's secret store")
        if d["type"] == "webhook" and not d["signingSecret"]:
            raise v.error(
                (*where, "signingSecret"), "is required for type webhook (requests are HMAC-signed)"
            )
        if d["type"] != "webhook" and d["signingSecret"]:
            raise v.error((*where, "signingSecret"), f"applies to type webhook only, not {d['type']}")
        events = d["events"] or list(NOTIFY_DEFAULT_EVENTS)
        if len(set(events)) != len(events):
            raise v.error((*where, "events"), "lists an event twice")
        out.append(NotifyDestination(d["type"], d["urlSecret"].strip(), d["signingSecret"], tuple(events),
                                     field=f"spec.notifications.destinations[{i}]"))  # fmt: skip
    return out


def _clean_path(p: str | None) -> str | None:
    return p.strip().strip("/") if p is not None else None


def load_config_file(path: str | os.PathLike[str]) -> list[SecretManagerConfig]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        # Read at most one byte past the limit: a huge file is refused without loading it.
        raise ConfigError(f"config is larger than the limit of {MAX_FILE_BYTES} bytes", path=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError("config is not valid UTF-8", path=str(path), line=line) from None
    configs = parse_config_text(text, str(path))
    if not configs:
        raise ConfigError("no SecretManagerConfig document found", path=str(path))
    return configs
