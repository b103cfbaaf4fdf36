"""Discovery: both controller layouts, the profiles/ fallback, and nothing else read."""

from __future__ import annotations

from pathlib import Path

from core.config import parse_config_text
from core.discover import discover
from core.source import LocalDirSource
from tests.core.conftest import make_repo

CFG = """apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: c}
spec:
  provider: {local: {}}
  secrets: {environment: dev%s}
  configs: {enabled: true%s}
"""


def layout(tmp_path: Path) -> LocalDirSource:
    return LocalDirSource(
        make_repo(
            tmp_path,
            {
                "apps/a/deployment-configuration/profiles/dev/application.secrets.env": "A=1\n",
                "apps/a/deployment-configuration/profiles/dev/application.properties": "p=1\n",
                "apps/a/deployment-configuration/profiles/dev/kustomization.yaml": "x: 1\n",
                "apps/a/deployment-configuration/profiles/prod/application.secrets.env": "A=2\n",
                "apps/b/deployment-configuration/dev/application.config.json": "{}\n",
                "apps/b/deployment-configuration/dev/other.env": "X=1\n",
                "apps/c/deployment-configuration/profiles/prod/application.secrets.env": "A=3\n",
                "other/deployment-configuration/profiles/dev/application.secrets.env": "A=4\n",
            },
        )
    )


def test_base_path_layout_with_fallback(tmp_path: Path) -> None:
    [c] = parse_config_text(CFG % (", basePath: apps", ""))
    found = {s.service: s for s in discover(c, layout(tmp_path))}
    assert set(found) == {"a", "b"}
    assert found["a"].files == [
        "apps/a/deployment-configuration/profiles/dev/application.secrets.env",
        "apps/a/deployment-configuration/profiles/dev/application.properties",
    ]
    assert found["b"].files == ["apps/b/deployment-configuration/dev/application.config.json"]
    assert found["a"].owner == "c/a/dev"


def test_whole_repo_and_custom_files(tmp_path: Path) -> None:
    [c] = parse_config_text(CFG % ("", ", files: [application.properties]"))
    found = {s.service: s.files for s in discover(c, layout(tmp_path))}
    assert set(found) == {"a", "b", "other"}
    assert found["a"][-1].endswith("application.properties") and found["b"] == []


def test_kustomize_path(tmp_path: Path) -> None:
    [c] = parse_config_text(CFG % (", kustomizePath: apps/a/deployment-configuration/profiles/dev", ""))
    [svc] = discover(c, layout(tmp_path))
    assert svc.service == "a" and len(svc.files) == 2
    [c] = parse_config_text(
        CFG % (", kustomizePath: apps/a/deployment-configuration/profiles/dev, prefix: shop", "")
    )
    assert discover(c, layout(tmp_path))[0].service == "shop"


def test_changed_paths_select_services(tmp_path: Path) -> None:
    [c] = parse_config_text(CFG % (", basePath: apps", ""))
    src = layout(tmp_path)
    changed = {"apps/b/deployment-configuration/dev/application.config.json", "README.md"}
    assert [s.service for s in discover(c, src, changed)] == ["b"]
    assert discover(c, src, {"apps/a/deployment-configuration/profiles/dev/kustomization.yaml"}) == []
    # a deleted file still marks its service as affected
    gone = {"apps/a/deployment-configuration/profiles/dev/application.config.yaml"}
    assert [s.service for s in discover(c, src, gone)] == ["a"]
