"""The part of `kustomize build` that secret and config generation uses, natively, in memory.

Why: the Secret Manager Controller's ``kustomizePath`` mode ran the ``kustomize`` binary on
that directory and synced the keys of the Secrets it generated
(``crates/controller/src/controller/kustomize/build.rs:12-51``, ``parse.rs:10-56``). A function
has no kustomize binary and must not shell out, so the subset those manifests need is built
here from the source tree, reading only the files the kustomizations name.

Supported (``kustomization.yaml`` / ``.yml`` / ``Kustomization``):

* ``secretGenerator`` / ``configMapGenerator`` items: ``name``, ``namespace``, ``behavior``
  (``create``, ``merge``, ``replace`` against a generator of the same name in a base),
  ``envs`` (and the older ``env``), ``files`` (``path`` or ``key=path``), ``literals``
  (``KEY=value``, surrounding quotes removed), ``type`` and ``options``; pairs are loaded in
  kustomize's order (envs, then literals, then files) and a key repeated in one generator is an
  error, as in kustomize (``api/internal/generators/utils.go`` makeValidatedDataMap);
* ``resources``: directories holding a kustomization (bases, overlays), and YAML files whose
  Secret (``data``) and ConfigMap (``data``) documents are kept; other kinds are dropped,
  since the controller read only Secrets;
* ``generatorOptions``, ``namePrefix``, ``nameSuffix``, ``namespace``, ``commonLabels``,
  ``labels``, ``commonAnnotations``, ``images``, ``replicas``, ``sortOptions``,
  ``buildMetadata``: accepted. They change resource names and metadata, never data keys or
  values, and the controller synced keys and values only, so they have no effect here.

Anything else (patches, components, replacements, vars, helm charts, generator or transformer
plugins, remote resources) is an error naming the kustomization file and the field: a value
could depend on it, and a guess would sync a different value than the controller did.

Env files follow kustomize's rules, not dotenv's (``api/kv/kv.go`` keyValuesFromLine):
leading whitespace trimmed, ``#`` lines and blank lines skipped, the value is everything after
the first ``=`` verbatim (no quote removal, no trailing-space trimming), a line without ``=``
has the empty value, and the key must be an environment variable name. File and env paths
must stay inside their kustomization's directory (kustomize's default load restrictor).
A SOPS-encrypted file is decrypted by the `read` callback the caller passes in.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import ParseError, SourceError, SyncError
from core.parsers.limits import LimitError, check_yaml
from core.source import SourceTree

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

#: Fields that change names or metadata only (see the module docstring).
_METADATA_ONLY = frozenset(
    {
        "apiVersion", "kind", "metadata", "generatorOptions", "namePrefix", "nameSuffix",
        "namespace", "commonLabels", "labels", "commonAnnotations", "images", "replicas",
        "sortOptions", "buildMetadata",
    }
)  # fmt: skip
_SUPPORTED = _METADATA_ONLY | {"resources", "bases", "secretGenerator", "configMapGenerator"}
_GENERATOR_FIELDS = frozenset(
    {"name", "namespace", "behavior", "envs", "env", "files", "literals", "type", "options"}
)
#: `IsEnvVarName` of Kubernetes' validation, which kustomize applies to env-file keys.
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
#: `IsConfigMapKey`: what a Secret or ConfigMap data key may be.
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: Deepest chain of bases followed (a cycle is reported before this).
_MAX_DEPTH = 20


class KustomizeError(ParseError):
    """Outside the supported subset, or invalid: names the kustomization file and field."""


@dataclass
class DataItem:
    key: str
    value: str = field(repr=False)
    #: ``path:key`` of where the value came from (env file, file, or the kustomization).
    source: str


@dataclass
class Resource:
    """One generated or listed Secret / ConfigMap, as `kustomize build` would output it."""

    kind: str  # "Secret" | "ConfigMap"
    name: str  # the name before namePrefix/nameSuffix/hash (what `behavior` matches on)
    namespace: str
    origin: str  # the kustomization or resource file that made it
    data: dict[str, DataItem] = field(default_factory=dict)


@dataclass
class BuildResult:
    resources: list[Resource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]


Reader = Callable[[str], bytes]


def kustomization_file(source: SourceTree, directory: str) -> str | None:
    """The kustomization file of `directory`, or None."""
    if not source.is_dir(directory):
        return None
    present = set(source.list_files(directory))
    for name in KUSTOMIZATION_FILES:
        if name in present:
            return _join(directory, name)
    return None


def build(source: SourceTree, directory: str, read: Reader | None = None) -> BuildResult:
    """The Secrets and ConfigMaps `kustomize build directory` would output (data only)."""
    result = BuildResult()
    result.resources = _build_dir(source, directory, read or source.read, result, ())
    return result


def inputs(source: SourceTree, directory: str) -> set[str]:
    """Every path a build of `directory` reads (kustomizations, env files, files, resource
    files), without reading the generator inputs: which pushes affect this service."""
    out: set[str] = set()
    _inputs(source, directory, out, ())
    return out


# -- the build ----------------------------------------------------------------------------
def _build_dir(
    source: SourceTree, directory: str, read: Reader, result: BuildResult, chain: tuple[str, ...]
) -> list[Resource]:
    path, doc = _load_kustomization(source, directory, chain)
    resources: list[Resource] = []
    for i, ref in enumerate(_list_field(doc, "resources", path) + _list_field(doc, "bases", path)):
        target = _resolve(directory, ref, path, f"resources[{i}]", allow_up=True)
        if source.is_dir(target):
            resources.extend(_build_dir(source, target, read, result, (*chain, path)))
        else:
            resources.extend(_resource_file(source, target, path, f"resources[{i}]", result))
    for gen_field, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for i, gen in enumerate(_list_field(doc, gen_field, path)):
            where = f"{gen_field}[{i}]"
            made = _generate(directory, path, where, gen, kind, read)
            _apply_behavior(resources, made, gen.get("behavior") or "create", path, where)
    return resources


def _load_kustomization(
    source: SourceTree, directory: str, chain: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    path = kustomization_file(source, directory)
    if path is None:
        raise KustomizeError(
            f"no kustomization.yaml in {directory or '.'} (kustomize build needs one)",
            path=chain[-1] if chain else directory or ".",
        )
    if path in chain or len(chain) >= _MAX_DEPTH:
        raise KustomizeError("kustomizations refer to each other in a cycle", path=path)
    doc = _yaml_doc(source.read(path), path)
    if not isinstance(doc, dict):
        raise KustomizeError("a kustomization must be a mapping", path=path)
    for key in doc:
        if key not in _SUPPORTED:
            raise KustomizeError(
                f"{key!r} is outside the kustomize subset supported here (secretGenerator, "
                "configMapGenerator, resources, and name/label options; docs/migration.md)",
                path=path,
                field=str(key),
            )
    return path, doc


def _yaml_doc(data: bytes, path: str) -> Any:
    try:
        text = data.decode("utf-8")
        check_yaml(text)
        return yaml.safe_load(text)
    except UnicodeDecodeError:
        raise KustomizeError("not valid UTF-8", path=path) from None
    except LimitError as exc:
        raise KustomizeError(exc.message, path=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else None
        raise KustomizeError("not valid YAML", path=path, line=line) from None


def _list_field(doc: dict[str, Any], name: str, path: str) -> list[Any]:
    value = doc.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise KustomizeError("must be a list", path=path, field=name)
    return value


def _resolve(directory: str, ref: Any, path: str, where: str, *, allow_up: bool) -> str:
    if not isinstance(ref, str) or not ref.strip():
        raise KustomizeError("must be a relative path", path=path, field=where)
    ref = ref.strip()
    if "://" in ref or ref.startswith(("git@", "github.com/", "/")) or "?ref=" in ref:
        raise KustomizeError(
            "remote or absolute resources are outside the supported subset (only paths in this repository)",
            path=path,
            field=where,
        )
    target = posixpath.normpath(_join(directory, ref))
    if target == ".":
        target = ""
    if target.startswith("../") or target == "..":
        raise KustomizeError("points outside the repository", path=path, field=where)
    inside = target == directory or target.startswith(f"{directory}/") or not directory
    if not allow_up and not inside:
        raise KustomizeError(
            "is not in or below the kustomization's directory (kustomize's load restrictor refuses it)",
            path=path,
            field=where,
        )
    return target


def _resource_file(
    source: SourceTree, target: str, path: str, where: str, result: BuildResult
) -> list[Resource]:
    try:
        data = source.read(target)
    except Exception:  # noqa: BLE001 - a missing file is the user's error, named
        raise KustomizeError(f"resource {target} does not exist", path=path, field=where) from None
    try:
        text = data.decode("utf-8")
        check_yaml(text)
        docs = list(yaml.safe_load_all(text))
    except (UnicodeDecodeError, LimitError, yaml.YAMLError):
        raise KustomizeError("not a readable YAML resource file", path=target) from None
    out = []
    for n, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or doc.get("kind") not in ("Secret", "ConfigMap"):
            continue  # the controller read Secrets only; other kinds carry no synced data
        if str(doc.get("apiVersion", "v1")) != "v1":
            continue
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or "")
        res = Resource(doc["kind"], name, str(meta.get("namespace") or ""), target)
        raw = doc.get("data") or {}
        if not isinstance(raw, dict):
            raise KustomizeError("data must be a mapping", path=target, field=f"document {n}.data")
        for key, value in raw.items():
            key = str(key)
            if doc["kind"] == "Secret":
                decoded = _b64_text(value)
                if decoded is None:
                    # As the controller's parse.rs:29-44: an undecodable value is skipped.
                    result.warnings.append(
                        f"{target}: Secret {name} key {key!r} is not base64 of UTF-8 text; skipped"
                    )
                    continue
                res.data[key] = DataItem(key, decoded, f"{target}:{key}")
            else:
                res.data[key] = DataItem(key, "" if value is None else str(value), f"{target}:{key}")
        if doc["kind"] == "Secret" and doc.get("stringData"):
            # parse.rs:25 reads `data` only: stringData never reached the controller's stores.
            result.warnings.append(
                f"{target}: Secret {name} stringData is not synced (the controller read only `data`)"
            )
        out.append(res)
    return out


def _b64_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("\n", ""), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _generate(directory: str, path: str, where: str, gen: Any, kind: str, read: Reader) -> Resource:
    if not isinstance(gen, dict):
        raise KustomizeError("a generator must be a mapping", path=path, field=where)
    for key in gen:
        if key not in _GENERATOR_FIELDS:
            raise KustomizeError(
                f"{key!r} is outside the supported generator fields", path=path, field=f"{where}.{key}"
            )
    name = gen.get("name")
    if not isinstance(name, str) or not name:
        raise KustomizeError("a generator must have a name", path=path, field=f"{where}.name")
    res = Resource(kind, name, str(gen.get("namespace") or ""), path)
    pairs: list[DataItem] = []
    envs = list(gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else [])
    for i, ref in enumerate(envs):
        target = _resolve(directory, ref, path, f"{where}.envs[{i}]", allow_up=False)
        pairs.extend(_env_file(_read(read, target, path, f"{where}.envs[{i}]"), target))
    for i, literal in enumerate(gen.get("literals") or []):
        pairs.append(_literal(literal, path, f"{where}.literals[{i}]"))
    for i, spec in enumerate(gen.get("files") or []):
        pairs.append(_file_source(directory, spec, path, f"{where}.files[{i}]", read))
    for item in pairs:
        if not _DATA_KEY.match(item.key):
            raise KustomizeError(
                f"key {item.key!r} is not a valid {kind} key (letters, digits, '-', '_', '.')",
                path=path,
                field=where,
            )
        if item.key in res.data:
            raise KustomizeError(
                f"{kind.lower()} {name} repeats the key {item.key!r} ({res.data[item.key].source} "
                f"and {item.source})",
                path=path,
                field=where,
            )
        res.data[item.key] = item
    return res


def _read(read: Reader, target: str, path: str, where: str) -> bytes:
    try:
        return read(target)
    except SyncError as exc:
        if not isinstance(exc, SourceError):
            raise  # e.g. a SOPS file that does not decrypt: its own error says where
        raise KustomizeError(f"{target} does not exist", path=path, field=where) from None
    except Exception:  # noqa: BLE001 - a missing file is the user's error, named
        raise KustomizeError(f"{target} does not exist", path=path, field=where) from None


def _env_file(data: bytes, target: str) -> list[DataItem]:
    """kustomize's env-file rules (module docstring), not dotenv's."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KustomizeError("invalid UTF-8", path=target, line=line) from None
    out = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if n == 1:
            line = line.removeprefix("\ufeff")
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not _ENV_VAR_NAME.match(key):
            raise KustomizeError("not a valid environment variable name before '='", path=target, line=n)
        out.append(DataItem(key, value if sep else "", f"{target}:{key}"))
    return out


def _literal(literal: Any, path: str, where: str) -> DataItem:
    if not isinstance(literal, str) or "=" not in literal or literal.startswith("="):
        raise KustomizeError("a literal must be KEY=value", path=path, field=where)
    key, _, value = literal.partition("=")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]  # kv.go removeQuotes: only when quoted on both sides
    return DataItem(key, value, f"{path}:{key}")


def _file_source(directory: str, spec: Any, path: str, where: str, read: Reader) -> DataItem:
    if not isinstance(spec, str) or not spec:
        raise KustomizeError("a file source must be 'path' or 'key=path'", path=path, field=where)
    key, sep, ref = spec.partition("=")
    if not sep:
        key, ref = posixpath.basename(spec), spec
    if not key or not ref or "=" in ref:
        raise KustomizeError("a file source must be 'path' or 'key=path'", path=path, field=where)
    target = _resolve(directory, ref, path, where, allow_up=False)
    data = _read(read, target, path, where)
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        # kustomize would emit it (Secret data / ConfigMap binaryData); the controller then
        # failed to read it as UTF-8 and skipped it (parse.rs:30-38). Refuse it clearly.
        raise KustomizeError(
            "file is not UTF-8 text; binary values are not synced", path=target, field=key
        ) from None
    return DataItem(key, value, f"{target}:{key}")


def _apply_behavior(resources: list[Resource], made: Resource, behavior: Any, path: str, where: str) -> None:
    """kustomize's generator `behavior` against resources from the bases."""
    same = [r for r in resources if r.kind == made.kind and r.name == made.name
            and (not made.namespace or r.namespace == made.namespace)]  # fmt: skip
    if behavior == "create":
        if same:
            raise KustomizeError(
                f"{made.kind} {made.name} already exists in a base (use behavior: merge or replace)",
                path=path,
                field=where,
            )
        resources.append(made)
    elif behavior in ("merge", "replace"):
        if not same:
            raise KustomizeError(
                f"behavior {behavior} needs a {made.kind} {made.name} from a base; none found",
                path=path,
                field=f"{where}.behavior",
            )
        target = same[0]
        if behavior == "replace":
            target.data = dict(made.data)
        else:
            target.data.update(made.data)
        target.origin = path
    else:
        raise KustomizeError(
            "behavior must be create, merge or replace", path=path, field=f"{where}.behavior"
        )


# -- inputs (no generator reads) ----------------------------------------------------------
def _inputs(source: SourceTree, directory: str, out: set[str], chain: tuple[str, ...]) -> None:
    try:
        path, doc = _load_kustomization(source, directory, chain)
    except KustomizeError:
        out.add(_join(directory, KUSTOMIZATION_FILES[0]))
        return
    out.add(path)
    for i, ref in enumerate(_list_field(doc, "resources", path) + _list_field(doc, "bases", path)):
        try:
            target = _resolve(directory, ref, path, f"resources[{i}]", allow_up=True)
        except KustomizeError:
            continue
        if source.is_dir(target):
            _inputs(source, target, out, (*chain, path))
        else:
            out.add(target)
    for gen_field in ("configMapGenerator", "secretGenerator"):
        for gen in _list_field(doc, gen_field, path):
            if not isinstance(gen, dict):
                continue
            refs = list(gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else [])
            refs += [f.partition("=")[2] or f for f in gen.get("files") or [] if isinstance(f, str)]
            for ref in refs:
                if isinstance(ref, str) and ref:
                    out.add(posixpath.normpath(_join(directory, ref)))


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


# -- routing (the controller's kustomize mode) --------------------------------------------
def routed_items(config: Any, directory: str, source: SourceTree, report: Any, read: Reader) -> list[Any]:
    """The secret-store items the controller synced from `kustomize build directory`.

    As the controller (reconcile/sync.rs:51-64, processing/kustomize.rs:49-55): every key of
    every generated Secret's `data`, named like a secrets-file key. ConfigMaps are built but not
    synced: the controller's `extract_properties_from_kustomize` has no caller, so nothing it
    generated ever reached a config store; they are reported as one warning. The same key in
    two Secrets is an error naming both (the controller let one win by output order)."""
    from core.route import RoutedItem, secret_store

    if kustomization_file(source, directory) is None:
        # build.rs:23-30: the controller refused a kustomizePath without one
        raise KustomizeError(
            "kustomizePath has no kustomization.yaml (the controller ran kustomize build here)",
            path=directory or ".",
            field="spec.secrets.kustomizePath",
        )
    result = build(source, directory, read)
    report.warnings.extend(result.warnings)
    store = secret_store(config)
    seen: dict[str, DataItem] = {}
    items = []
    for res in result.of_kind("Secret"):
        for key, item in res.data.items():
            first = seen.get(key)
            if first is not None:
                raise KustomizeError(
                    f"key {key!r} is generated by two Secrets ({first.source} and {item.source}); "
                    "the controller kept whichever kustomize printed last: keep one",
                    path=res.origin,
                    field=key,
                )
            seen[key] = item
            items.append(RoutedItem(store, "secret", key, item.value, item.source))
    maps = result.of_kind("ConfigMap")
    keys = sum(len(m.data) for m in maps)
    if keys:
        report.warnings.append(
            f"{directory}: {keys} ConfigMap key(s) from kustomize not synced (the controller "
            "synced only generated Secrets; docs/migration.md)"
        )
    return items
