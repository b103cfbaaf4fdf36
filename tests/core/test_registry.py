"""The store-kind registry: the one place a kind is declared, read by routing, the store
factory, naming and the spine; a new kind is one module plus one registry entry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import registry
from core.config import parse_config_text
from core.errors import ConfigError
from core.naming import rules_for
from core.route import config_store, secret_store
from core.source import LocalDirSource
from core.stores import open_store
from core.sync import run
from tests.core import memory_store
from tests.core.conftest import SVC, write_config

ROOT = Path(__file__).resolve().parents[2]


def _module_file(ref: str) -> Path:
    return ROOT / (ref.partition(":")[0].replace(".", "/") + ".py")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals of a module, docstrings left out (prose may name a kind)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_kind_ids_are_declared_only_in_the_registry_and_the_kinds_own_modules() -> None:
    own: dict[str, set[Path]] = {}
    for kind in registry.KINDS:
        own[kind.id] = {
            ROOT / "core/registry.py",
            _module_file(kind.store_class),
            _module_file(kind.naming),
            # The provider's shared helpers (error mapping) may label errors with a kind.
            ROOT / f"core/stores/_{kind.provider}.py",
        }
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for line, text in _string_constants(path):
            for kind_id, allowed in own.items():
                if kind_id in text and path not in allowed:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {kind_id}")
    assert found == []
    assert len(registry.KIND_IDS) == 8


def _cfg(provider_yaml: str, configs: str = "enabled: true") -> object:
    return parse_config_text(
        f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: x}}
spec:
  provider:
{provider_yaml}
  secrets: {{environment: dev}}
  configs: {{{configs}}}
"""
    )[0]


@pytest.mark.parametrize(
    ("provider_yaml", "configs", "secret", "config"),
    [
        ("    aws: {region: eu-west-1}", "enabled: true", "aws-secrets-manager", "aws-parameter-store"),
        (
            "    aws: {secretsStore: ParameterStore}",
            "enabled: true",
            "aws-parameter-store",
            "aws-parameter-store",
        ),
        ("    gcp: {projectId: p}", "enabled: true", "gcp-secret-manager", "gcp-secret-manager"),
        (
            "    gcp: {projectId: p}",
            "enabled: true, store: ParameterManager",
            "gcp-secret-manager",
            "gcp-parameter-manager",
        ),
        ("    azure: {vaultName: v}", "enabled: true", "azure-key-vault", "azure-app-configuration"),
        ("    local: {path: x.db}", "enabled: true", "local-secrets", "local-configs"),
    ],
)
def test_routing_reads_the_registrys_conditions(provider_yaml, configs, secret, config) -> None:  # type: ignore[no-untyped-def]
    cfg = _cfg(provider_yaml, configs)
    assert (secret_store(cfg), config_store(cfg)) == (secret, config)
    assert registry.kinds_in_use(cfg) == list(dict.fromkeys([secret, config]))


def test_a_kind_joins_a_run_by_its_condition_alone() -> None:
    """App Configuration takes part with configs disabled when it derives Key Vault refs."""
    plain = _cfg("    azure: {vaultName: v}", "enabled: false")
    refs = _cfg("    azure: {vaultName: v, appConfig: {keyVaultReferences: true}}", "enabled: false")
    assert registry.kinds_in_use(plain) == ["azure-key-vault"]
    assert registry.kinds_in_use(refs) == ["azure-key-vault", "azure-app-configuration"]


def test_every_kind_resolves_its_class_and_rules_lazily() -> None:
    for kind in registry.KINDS:
        assert kind.load_class().kind == kind.id
        assert rules_for(kind.id).store == kind.id
    with pytest.raises(KeyError, match="unknown store kind 'nope'"):
        registry.get("nope")


@pytest.fixture
def memory_kind():  # type: ignore[no-untyped-def]
    """The one registry entry the test kind needs."""
    registry.register(
        registry.StoreKind(
            memory_store.KIND,
            provider="local",
            roles={"config": registry.provider_option("memory.enabled", True)},
            store_class="tests.core.memory_store:MemoryStore",
            naming="tests.core.memory_store:RULES",
            options="tests.core.memory_store:MemoryOptions",
            options_section="memory",
        )
    )
    memory_store.MemoryStore.entries.clear()
    memory_store.MemoryStore.writes = 0
    yield memory_store.MemoryStore
    registry.unregister(memory_store.KIND)


def test_a_new_kind_is_one_module_plus_one_registry_entry(memory_kind, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = (
        write_config(tmp_path)
        .read_text()
        .replace("      path:", "      memory: {enabled: true, maxEntries: 50}\n      path:")
    )
    configs = parse_config_text(text)
    assert configs[0].options_for(memory_store.KIND) == memory_store.MemoryOptions(True, 50)
    source = LocalDirSource(str(repo))
    assert config_store(configs[0]) == memory_store.KIND
    assert rules_for(memory_store.KIND) is memory_store.RULES
    opened = open_store(memory_store.KIND, configs[0])
    assert type(opened) is memory_kind and opened.max_entries == 50

    report = run(configs, source, apply=True)
    assert report.errors == []
    by_store = {c.store for c in report.changes}
    assert by_store == {"local-secrets", memory_store.KIND}
    orders = SVC.format(service="orders")
    assert {(c.action, c.name, c.source) for c in report.changes if c.store == memory_store.KIND} >= {
        ("create", "orders.dev.db.url", f"{orders}/application.properties:db.url")
    }
    assert memory_kind.entries["payments.dev.payments.retries"][0] == "3"
    writes = memory_kind.writes

    again = run(configs, source, apply=True)
    assert {c.action for c in again.changes} == {"unchanged"}
    assert memory_kind.writes == writes

    # Without the entry's condition the provider's default kind is back.
    other = parse_config_text(write_config(tmp_path).read_text())
    assert config_store(other[0]) == "local-configs"
    assert other[0].options_for(memory_store.KIND) == memory_store.MemoryOptions()
    # The kind's own cross-field rule runs at load, naming file, line and field.
    bad = text.replace("maxEntries: 50", "maxEntries: 0")
    with pytest.raises(ConfigError) as err:
        parse_config_text(bad, "smf.yaml")
    assert (err.value.path, err.value.field) == ("smf.yaml", "spec.provider.local.memory.maxEntries")
    assert err.value.line == bad.splitlines().index("      memory: {enabled: true, maxEntries: 0}") + 1
