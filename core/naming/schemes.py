"""Naming schemes: how a config's entries are named, chosen per config by ``spec.naming``.

A scheme is a default namer plus optional namers per store kind; a namer turns one
`NameRequest` into ``(name, refused)``, where `refused` is the name the scheme wanted when
the store refuses it and the nearest valid one is used instead (reported once per store).

- ``functions`` (our API version): the config's ``nameTemplate`` or the store's default
  template (`NamingRules.default_template`), substituted values mapped into the store's
  charset.
- ``controller`` (the Secret Manager Controller's API groups): the controller's names per
  store (core/naming/controller.py); an explicit ``nameTemplate`` still wins.

Adding a scheme is one `NamingScheme` passed to `register` (and its id accepted by
``spec.naming`` in core/config.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.naming import NameContext, rules_for
from core.naming import controller as controller_naming

if TYPE_CHECKING:
    from core.config import SecretManagerConfig


@dataclass(frozen=True)
class NameRequest:
    """One key of one service, to be named in one store kind."""

    config: SecretManagerConfig
    store: str
    kind: str  # "secret" | "config"
    service: str
    prefix: str
    environment: str
    key: str

    @property
    def template(self) -> str | None:
        """The config's explicit template for this entry's kind, if any."""
        configs = self.config.configs.name_template if self.kind == "config" else None
        return configs or self.config.secrets.name_template


Namer = Callable[[NameRequest], tuple[str, str | None]]


@dataclass(frozen=True)
class NamingScheme:
    id: str
    default: Namer
    #: Namers for particular store kinds (by kind id); others use `default`.
    by_kind: Mapping[str, Namer] = field(default_factory=dict)

    def name(self, request: NameRequest) -> tuple[str, str | None]:
        return self.by_kind.get(request.store, self.default)(request)


def default_path(config: SecretManagerConfig, prefix: str, environment: str) -> str:
    """Parameter Store path: `configs.parameterPath` or ``/{prefix}/{environment}``."""
    path = config.configs.parameter_path or f"/{prefix}/{environment}"
    return "/" + path.strip("/")


def template_name(request: NameRequest) -> tuple[str, str | None]:
    """The ``functions`` namer: the explicit template or the store's default one."""
    config = request.config
    field_name = (
        "spec.configs.nameTemplate"
        if request.kind == "config" and config.configs.name_template
        else "spec.secrets.nameTemplate"
    )
    ctx = NameContext(
        service=request.service,
        environment=request.environment,
        key=request.key,
        kind=request.kind,
        prefix=request.prefix,
        suffix=config.secrets.suffix or "",
        path=default_path(config, request.prefix, request.environment),
    )
    rules = rules_for(request.store)
    template = request.template
    if not template and rules.default_template_for is not None:
        template = rules.default_template_for(config)
    return rules.render(template, ctx, field_name=field_name), None


def controller_name(request: NameRequest) -> tuple[str, str | None]:
    """The ``controller`` namer: the controller's name, or the explicit template if set."""
    if request.template:
        return template_name(request)
    config = request.config
    name, wanted = controller_naming.name_for(
        rules_for(request.store),
        prefix=request.prefix,
        environment=request.environment,
        key=request.key,
        suffix=config.secrets.suffix,
        parameter_path_option=config.configs.parameter_path,
        config_store=request.kind == "config" and config.configs.enabled,
    )
    return name, (wanted if wanted != name else None)


SCHEMES: dict[str, NamingScheme] = {
    "functions": NamingScheme("functions", template_name),
    "controller": NamingScheme("controller", controller_name),
}


def register(scheme: NamingScheme) -> None:
    """Make `scheme` selectable by ``spec.naming: <scheme.id>``."""
    SCHEMES[scheme.id] = scheme


def scheme_for(config: SecretManagerConfig) -> NamingScheme:
    return SCHEMES[config.naming]
