"""Typed store options: each store declares its options once, as a dataclass.

A store module declares a dataclass of its options (its part of ``spec.provider.<type>``);
the registry points at it (`StoreKind.options`, `Provider.options`). From those dataclasses
this module derives the schema the config loader validates against (field names in
camelCase, types from the annotations, defaults from the dataclass: the only place a default
is written), builds the typed instances the stores read, and collects each dataclass's
cross-field `problems()`, which the loader reports with file, line and field when the
config is loaded, not when a store is first opened.

Only the chosen provider's store modules are imported (they import their SDK lazily, so a
config load imports no SDK).

Declaring options::

    @dataclass(frozen=True)
    class ParameterStoreOptions:
        type: str = option("String", enum=("String", "SecureString"))
        kms_key_id: str | None = None

        def problems(self, provider: Mapping[str, Any]) -> list[tuple[str, str]]:
            return []   # (field relative to this section, message)
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import F

_META = "smf"


def option(
    default: Any = dataclasses.MISSING,
    *,
    enum: tuple[str, ...] | None = None,
    required: bool = False,
    ignored: str | None = None,
    key: str | None = None,
) -> Any:
    """A dataclass field with what the schema needs beyond its type and default.

    `key` overrides the YAML name (default: the field name in camelCase); `ignored` marks a
    field accepted for compatibility but without effect (the message of its warning).
    """
    meta = {_META: {"enum": enum, "required": required, "ignored": ignored, "key": key}}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta)
    if default is dataclasses.MISSING and not required:
        default = None
    return dataclasses.field(default=default, metadata=meta)


def yaml_key(f: dataclasses.Field[Any]) -> str:
    meta = f.metadata.get(_META) or {}
    return meta.get("key") or re.sub(r"_([a-z])", lambda m: m.group(1).upper(), f.name)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _field_spec(tp: Any, f: dataclasses.Field[Any] | None) -> F:
    from core.config import F, obj

    meta = (f.metadata.get(_META) if f is not None else None) or {}
    kw: dict[str, Any] = {"required": bool(meta.get("required")), "enum": meta.get("enum")}
    if meta.get("ignored"):
        return F("any", ignored=meta["ignored"])
    if f is not None and f.default is not dataclasses.MISSING and f.default is not None:
        kw["default"] = f.default
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return obj(schema_fields(tp), required=kw["required"])
    if tp is Any:
        return F("any")
    if origin is list or tp is list:
        (item,) = typing.get_args(tp) or (str,)
        return F("list", item=_field_spec(item, None), required=kw["required"])
    if origin is dict or tp is dict or origin is Mapping:
        return F("map", required=kw["required"])
    names = {str: "str", bool: "bool", int: "int", float: "float"}
    if tp not in names:
        raise TypeError(f"option type {tp!r} has no schema type")
    return F(names[tp], **kw)


def schema_fields(cls: type) -> dict[str, F]:
    """The loader's schema fields for an options dataclass (nested dataclasses → objects)."""
    hints = typing.get_type_hints(cls)
    return {yaml_key(f): _field_spec(hints[f.name], f) for f in dataclasses.fields(cls)}


def build(cls: type, data: Mapping[str, Any] | None) -> Any:
    """A typed instance from a validated section (YAML names, defaults already applied)."""
    data = data or {}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        value = data.get(yaml_key(f))
        tp = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(tp):
            value = build(tp, value if isinstance(value, Mapping) else {})
        elif value is None:
            continue  # the dataclass default
        kwargs[f.name] = value
    return cls(**kwargs)


def problems_of(options: Any, provider_section: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The options' cross-field problems: (field relative to its section, message)."""
    check = getattr(options, "problems", None)
    return list(check(provider_section)) if check is not None else []


@dataclasses.dataclass(frozen=True)
class Auth:
    """``spec.provider.<type>.auth``: shared by every cloud (workload identity is used in
    functions, so only the fields a function can act on mean something)."""

    auth_type: str | None = None
    role_arn: str | None = None
    client_id: str | None = None
    tenant_id: str | None = None
    service_account_email: str | None = None
    service_account_key_ref: Any = option(ignored="workload identity is used in functions")


# -- one provider's section, from the registry ---------------------------------------------
@dataclasses.dataclass
class ProviderOptions:
    """The typed options of one config's provider: shared settings and one object per kind."""

    settings: Any
    kinds: dict[str, Any]
    #: (dotted field under ``spec.provider.<type>``, message) of every cross-field rule broken.
    problems: list[tuple[str, str]]


def provider_schema(provider_id: str) -> F:
    """The schema of ``spec.provider.<provider_id>``: the provider's shared fields plus each
    of its kinds' fields (in their sub-section, or merged in when they have none)."""
    from core import registry
    from core.config import obj

    fields = dict(schema_fields(registry.get_provider(provider_id).options_class()))
    for kind in registry.kinds_of(provider_id):
        cls = kind.options_class()
        if cls is None:
            continue
        own = schema_fields(cls)
        if kind.options_section:
            own = {kind.options_section: obj(own)}
        clash = sorted(set(own) & set(fields))
        if clash:
            raise TypeError(f"{kind.id}: option {clash[0]!r} is declared twice in provider {provider_id!r}")
        fields.update(own)
    return obj(fields)


def load_provider_options(provider_id: str, section: Mapping[str, Any]) -> ProviderOptions:
    """Typed options from a validated ``spec.provider.<provider_id>`` section."""
    from core import registry

    settings = build(registry.get_provider(provider_id).options_class(), section)
    kinds: dict[str, Any] = {}
    problems = [(where, msg) for where, msg in problems_of(settings, section)]
    for kind in registry.kinds_of(provider_id):
        cls = kind.options_class()
        if cls is None:
            continue
        own = section.get(kind.options_section) if kind.options_section else section
        kinds[kind.id] = build(cls, own)
        prefix = f"{kind.options_section}." if kind.options_section else ""
        problems += [(prefix + where, msg) for where, msg in problems_of(kinds[kind.id], section)]
    return ProviderOptions(settings, kinds, problems)
