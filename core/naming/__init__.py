"""Per-store naming rules. `rules_for(store)` returns a store kind's `NamingRules`.

Which module holds a kind's rules is declared in `core.registry`; modules are imported
lazily so that naming costs nothing until a store is used.
"""

from __future__ import annotations

from core.naming.base import NameContext, NamingRules


def rules_for(store: str) -> NamingRules:
    from core import registry

    return registry.rules_for(store)


__all__ = ["NameContext", "NamingRules", "rules_for"]
