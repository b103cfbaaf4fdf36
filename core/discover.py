"""Discovery: which services, environments and files a config covers in a source tree.

Two layouts, as the controller had them:
- `secrets.basePath` (or the whole repo when neither path is set): every directory named
  ``deployment-configuration`` below it is a service; the service name is its parent
  directory's name. Files are read from ``deployment-configuration/profiles/{environment}/``,
  falling back to ``deployment-configuration/{environment}/``.
- `secrets.kustomizePath`: one directory, read directly; the service is `secrets.prefix` or the
  directory above ``deployment-configuration``/``profiles``/the environment directory.

Only the known file names are read (`application.secrets.*` and the config files); nothing
else in the repository is opened. With the controller's file semantics
(`fileSemantics: controller`, docs/migration.md) only the three files the controller read
(``parser/file_finder.rs:169-178``): `application.secrets.env`, `application.secrets.yaml` and
`application.properties` (plus `configs.files` when the spec lists them), and a
`kustomizePath` is built as kustomize would (core/kustomize.py) instead of read directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import CONTROLLER, SECRET_FILES, SecretManagerConfig
from core.naming.controller import KUSTOMIZE_DEFAULT_PREFIX
from core.source import SourceTree

SERVICE_DIR = "deployment-configuration"
#: The files the controller read (parser/file_finder.rs:169-178).
CONTROLLER_SECRET_FILES = ("application.secrets.env", "application.secrets.yaml")
CONTROLLER_CONFIG_FILES = ("application.properties",)


@dataclass
class ServiceFiles:
    """One service's files for one config and environment."""

    config: SecretManagerConfig
    service: str
    environment: str
    directory: str
    files: list[str] = field(default_factory=list)
    #: Built with core/kustomize.py (controller semantics + kustomizePath); `files` is then
    #: every path the build reads.
    kustomize: bool = False

    @property
    def owner(self) -> str:
        return f"{self.config.name}/{self.service}/{self.environment}"

    @property
    def prefix(self) -> str:
        if self.config.secrets.prefix:
            return self.config.secrets.prefix
        if self.config.naming == "controller" and self.config.secrets.kustomize_path is not None:
            return KUSTOMIZE_DEFAULT_PREFIX  # the controller's kustomize mode (reconcile/sync.rs:63)
        return self.service


def wanted_files(config: SecretManagerConfig) -> tuple[str, ...]:
    if config.file_semantics == CONTROLLER:
        extra = tuple(config.configs.files) or CONTROLLER_CONFIG_FILES
        return CONTROLLER_SECRET_FILES + tuple(f for f in extra if f not in CONTROLLER_SECRET_FILES)
    return SECRET_FILES + tuple(f for f in config.config_files if f not in SECRET_FILES)


def builds_kustomize(config: SecretManagerConfig) -> bool:
    """The controller ran `kustomize build` on `kustomizePath` (reconcile/sync.rs:51-64)."""
    return config.file_semantics == CONTROLLER and config.secrets.kustomize_path is not None


def discover(
    config: SecretManagerConfig, source: SourceTree, changed_paths: set[str] | None = None
) -> list[ServiceFiles]:
    """Services of `config` in `source`; with `changed_paths`, only the affected ones."""
    env = config.secrets.environment
    found: list[ServiceFiles] = []
    if config.secrets.kustomize_path is not None:
        directory = config.secrets.kustomize_path
        service = config.secrets.prefix or _service_from_path(directory, env)
        found.append(ServiceFiles(config, service, env, directory))
    else:
        base = config.secrets.base_path or ""
        for d in source.walk_dirs(base):
            if d.rsplit("/", 1)[-1] != SERVICE_DIR:
                continue
            parent = d.rsplit("/", 1)[0] if "/" in d else ""
            service = parent.rsplit("/", 1)[-1] if parent else (config.secrets.prefix or "root")
            for candidate in (f"{d}/profiles/{env}", f"{d}/{env}"):
                if source.is_dir(candidate):
                    found.append(ServiceFiles(config, service, env, candidate))
                    break
    names = wanted_files(config)
    for svc in found:
        if builds_kustomize(config):
            from core.kustomize import inputs

            svc.kustomize = True
            svc.files = sorted(inputs(source, svc.directory))
            continue
        present = set(source.list_files(svc.directory)) if source.is_dir(svc.directory) else set()
        svc.files = [f"{svc.directory}/{n}" if svc.directory else n for n in names if n in present]
    if changed_paths is not None:
        found = [s for s in found if _affected(s, changed_paths)]
    return found


def _affected(svc: ServiceFiles, changed: set[str]) -> bool:
    if svc.kustomize:
        return any(p in svc.files for p in changed) or any(p.startswith(f"{svc.directory}/") for p in changed)
    prefix = f"{svc.directory}/" if svc.directory else ""
    names = set(wanted_files(svc.config))
    return any(p in svc.files or (p.startswith(prefix) and p[len(prefix) :] in names) for p in changed)


def _service_from_path(directory: str, env: str) -> str:
    parts = [p for p in directory.split("/") if p]
    while parts and parts[-1] in (env, "profiles", SERVICE_DIR):
        parts.pop()
    return parts[-1] if parts else "root"
