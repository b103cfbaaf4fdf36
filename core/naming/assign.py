"""Naming step: render each routed item's store name, then check it before any write.

Names come from the config's naming scheme (core/naming/schemes.py); `default_path` is
re-exported from there.

Checks, all before anything is written: the store's charset/length/depth rules, the value
size, and clashes — two sources landing on one name (case-insensitively where the store is
case-insensitive). A clash is an error naming both sources, and both services fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from core.config import SecretManagerConfig
from core.errors import NamingError
from core.naming import NameContext, rules_for
from core.naming.schemes import NameRequest, default_path, scheme_for

T = TypeVar("T")
__all__ = ["check_entry", "clashes", "default_path", "find_clashes", "render_name", "render_name_noting"]


def render_name(
    config: SecretManagerConfig, store: str, kind: str, service: str, prefix: str, environment: str, key: str
) -> str:
    return render_name_noting(config, store, kind, service, prefix, environment, key)[0]


def render_name_noting(
    config: SecretManagerConfig, store: str, kind: str, service: str, prefix: str, environment: str, key: str
) -> tuple[str, str | None]:
    """(name, the scheme's wanted name when the store refused it and a nearest valid one is
    used), by the config's naming scheme (``spec.naming``, core/naming/schemes.py), unless
    the store's options name every entry of the service alike (`entry_template_for`)."""
    rules = rules_for(store)
    imposed = rules.entry_template_for(config) if rules.entry_template_for is not None else None
    if imposed is not None:
        template, field_name = imposed
        ctx = NameContext(service=service, environment=environment, key="", kind=kind, prefix=prefix,
                          suffix=config.secrets.suffix or "")  # fmt: skip
        return rules.render(template, ctx, field_name=field_name), None
    request = NameRequest(config, store, kind, service, prefix, environment, key)
    return scheme_for(config).name(request)


def check_entry(store: str, name: str, value: str, source: str) -> NamingError | None:
    rules = rules_for(store)
    path, _, key = source.rpartition(":")
    problem = rules.check_name(name)
    if problem:
        return NamingError(f"{store} name {name!r}: {problem}", path=path, field=key)
    problem = rules.check_value(value)
    if problem:
        return NamingError(f"{store} {name!r}: {problem}", path=path, field=key)
    return None


def find_clashes(named: list[tuple[str, str, str]]) -> list[tuple[str, str, NamingError]]:
    """`named` is (store, name, source). Returns (source_a, source_b, error) per clash."""
    return list(clashes((store, name, source, source) for store, name, source in named))


def clashes(named: Iterable[tuple[str, str, str, T]]) -> Iterator[tuple[T, T, NamingError]]:
    """`named` is (store, name, source, tag). Yields (tag_a, tag_b, error) per clash.

    One pass over an index keyed by (store, the store's clash form of the name): the tag
    (e.g. the entry's owner) says whom a clash concerns without searching for it again.
    """
    seen: dict[tuple[str, str], tuple[str, str, T]] = {}
    for store, name, source, tag in named:
        k = (store, rules_for(store).clash_key(name))
        if k not in seen:
            seen[k] = (name, source, tag)
            continue
        other_name, other_source, other_tag = seen[k]
        how = "" if other_name == name else " (names differ only in case; the store is case-insensitive)"
        path, _, key = source.rpartition(":")
        err = NamingError(
            f"{other_source} and {source} both map to {store} name {name!r}{how}",
            path=path,
            field=key,
        )
        yield other_tag, tag, err
