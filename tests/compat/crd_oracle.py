"""The controller's CRD as a JSON-schema oracle: is a document valid where the controller ran?

Independent of core/crd.py on purpose: it reads the CRD files the controller's repositories
ship (`controller_docs/crds/`) and validates with the `jsonschema` library, adding only what
the Kubernetes API server does around an openAPIV3Schema:
- `nullable: true` admits null; a null value of a non-nullable field is pruned first
  (Kubernetes "Defaulting and nullable");
- strict field validation (kubectl's default since 1.27): unknown fields are errors, so every
  object with `properties` gets `additionalProperties: false`;
- `apiVersion` must be the served `{group}/{version}`, `kind` the CRD's kind, `metadata.name`
  is required;
- `status` is a subresource: a create ignores it, so it is not validated.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def corpus_dir() -> Path | None:
    """Where the controller's documents and CRDs are, if this machine has them.

    They are the controller's material, fetched from its repositories, so the project does not
    commit them (workplace rule for fetched material): they live outside the repository, in
    `$SMF_CONTROLLER_CORPUS` or the shared folder beside the checkout
    (`../shared/compat/controller_docs`). tests/compat/CORPUS.md says what they hold.
    """
    import os

    for candidate in (
        os.environ.get("SMF_CONTROLLER_CORPUS"),
        Path(__file__).resolve().parents[2].parent / "shared" / "compat" / "controller_docs",
    ):
        if candidate and (Path(candidate) / "crds").is_dir():
            return Path(candidate)
    return None


CORPUS = corpus_dir()
CRDS = CORPUS / "crds" if CORPUS else None

_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        **{
            k: {}
            for k in (
                "generateName",
                "finalizers",
                "ownerReferences",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            )
        },
    },
}


def _structural(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    if "properties" in node:
        node["properties"] = {k: _structural(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _structural(node[key])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            node[key] = [_structural(v) for v in node[key]]
    return node


def _prune_nulls(value: Any, schema: dict[str, Any] | None) -> Any:
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out = {}
        for k, v in value.items():
            sub = props.get(k)
            if v is None and sub is not None and not sub.get("nullable"):
                continue
            out[k] = _prune_nulls(v, sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune_nulls(v, schema["items"]) for v in value]
    return value


class CrdOracle:
    """Validates documents against the CRD of their API group (None for another group)."""

    def __init__(self) -> None:
        self.raw: dict[str, dict[str, Any]] = {}
        self.validators: dict[str, jsonschema.Draft7Validator] = {}
        for path in sorted(CRDS.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            group = crd["spec"]["group"]
            (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
            raw = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            raw["properties"].pop("status", None)
            schema = _structural(raw)
            schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
            schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
            schema["properties"]["metadata"] = _OBJECT_META
            schema["required"] = ["apiVersion", "kind", "metadata", *schema.get("required", [])]
            self.raw[f"{group}/{version['name']}"] = raw
            self.validators[f"{group}/{version['name']}"] = jsonschema.Draft7Validator(schema)

    def errors(self, doc: dict[str, Any]) -> list[str]:
        """Why the controller's API server would refuse `doc` ([] when it would accept it)."""
        api_version = str(doc.get("apiVersion"))
        validator = self.validators.get(api_version)
        if validator is None:
            return [f"apiVersion {api_version!r} is not served by either controller CRD"]
        doc = {k: v for k, v in doc.items() if k != "status"}
        doc = _prune_nulls(doc, self.raw[api_version])
        return [f"{field or '<root>'}: {e.message}" for field, e in self._located(validator, doc)]

    def fields(self, doc: dict[str, Any]) -> set[str]:
        """The dotted fields the CRD's errors are about (a missing or unexpected one included)."""
        api_version = str(doc.get("apiVersion"))
        if api_version not in self.validators:
            return {"apiVersion"}
        doc = _prune_nulls({k: v for k, v in doc.items() if k != "status"}, self.raw[api_version])
        return {field for field, _ in self._located(self.validators[api_version], doc)}

    @staticmethod
    def _located(validator: jsonschema.Draft7Validator, doc: Any) -> list[tuple[str, Any]]:
        out = []
        for e in validator.iter_errors(doc):
            where = ".".join(str(p) for p in e.absolute_path)
            extra: list[str] = []
            if e.validator == "required":
                extra = [str(e.message).split("'")[1]]
            elif e.validator == "additionalProperties":
                extra = [k for k in e.instance if k not in e.schema.get("properties", {})]
            fields = [f"{where}.{x}" if where else x for x in extra] or [where]
            out.extend((f, e) for f in fields)
        return out
