"""A wire-level fake of GCP Parameter Manager v1 (REST), for the real client library.

No emulator exists, so this speaks the REST surface the ``google-cloud-parametermanager``
client uses (``transport="rest"``, ``api_endpoint="http://127.0.0.1:PORT"``) and builds every
request and response with the library's own proto-plus message classes, so field names, enum
encodings and JSON shapes are the library's, not ours.

What it enforces, as documented by Google:

* parameter and version ids: ``[A-Za-z0-9_-]``, 1–63 characters, not beginning with ``-``;
* labels: at most 64; keys ``[a-z][a-z0-9_-]{0,62}``, values ``[a-z0-9_-]{0,63}``;
* format ``UNFORMATTED`` (default), ``YAML`` or ``JSON``, immutable after creation; a version's
  payload must parse in the parameter's format;
* payload at most 1 MiB; at most 15 secret references per version;
* versions are immutable: only ``disabled`` may be updated; a disabled version never returns
  its payload and cannot be rendered;
* a parameter with versions cannot be deleted (delete the versions first);
* duplicate ids → ``409 ALREADY_EXISTS``; missing → ``404 NOT_FOUND``;
* ``render`` replaces ``__REF__(//secretmanager.googleapis.com/projects/P/secrets/S/versions/V)``
  (JSON and YAML only) with the secret's value from a resolver (e.g. drongo's Secret Manager);
* ``list`` pages (``pageSize``, ``pageToken``) and filters ``labels.KEY=VALUE`` / ``labels.KEY:*``
  terms joined by ``AND``.

Usage::

    with ParameterManagerFake(secret_resolver=fn) as fake:
        os.environ["GCP_PARAMETER_MANAGER_ENDPOINT"] = fake.endpoint
        fake.reset()        # between tests
        fake.requests       # [(method, path)] seen, for call counting
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from google.cloud.parametermanager_v1 import types as pm

from tests.fakes._loopback import read_body, send_json

MAX_PAYLOAD = 1024 * 1024
MAX_REFS = 15
MAX_LABELS = 64
ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
REF_RE = re.compile(
    r'__REF__\(\s*"?//secretmanager\.googleapis\.com/'
    r'(?P<name>projects/[^/\s")]+(?:/locations/[^/\s")]+)?/secrets/[^/\s")]+/versions/[^/\s")]+)"?\s*\)'
)

_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
           412: "FAILED_PRECONDITION", 500: "INTERNAL"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or _STATUS.get(code, "UNKNOWN")


def _now() -> datetime:
    return datetime.now(UTC)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: parameter resource name → Parameter
        self.parameters: dict[str, pm.Parameter] = {}
        #: parameter resource name → {version id → ParameterVersion} (creation order)
        self.versions: dict[str, dict[str, pm.ParameterVersion]] = {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    # -- plumbing --------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        raw = read_body(self)
        return json.loads(raw) if raw else {}

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        send_json(self, code, payload)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        ints = "enum-encoding=int" in query.get("$alt", "")
        self.server.requests.append((self.command, path))
        try:
            body = self._body() if self.command in ("POST", "PATCH") else {}
            msg = self.server.fake.handle(self.command, path, query, body)
            payload = (
                type(msg).to_dict(msg, use_integers_for_enums=ints, preserving_proto_field_name=False)
                if msg is not None
                else {}
            )
            self._send(200, payload)
        except ApiError as exc:
            self._send(exc.code, {"error": {"code": exc.code, "message": str(exc), "status": exc.status}})

    do_GET = _dispatch
    do_POST = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: ParameterManagerFake) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.requests: list[tuple[str, str]] = []


SecretResolver = Callable[[str], "bytes | None"]


class ParameterManagerFake:
    """In-memory Parameter Manager behind a REST server on 127.0.0.1 (a free port)."""

    def __init__(self, secret_resolver: SecretResolver | None = None) -> None:
        self.secret_resolver = secret_resolver
        self.state = _State()
        self._server: _Server | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ParameterManagerFake:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ParameterManagerFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        assert self._server is not None
        return self._server.requests

    def reset(self) -> None:
        with self.state.lock:
            self.state.parameters.clear()
            self.state.versions.clear()
        if self._server is not None:
            self._server.requests.clear()

    # -- routing ---------------------------------------------------------------------------
    _ROUTES = [
        ("GET", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/parameters$"), "list_parameters"),
        ("POST", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/parameters$"), "create_parameter"),
        ("GET", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+)$"), "get_parameter"),
        ("PATCH", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+)$"), "update_parameter"),
        ("DELETE", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+)$"), "delete_parameter"),
        ("GET", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+)/versions$"), "list_versions"),
        ("POST", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+)/versions$"), "create_version"),
        ("GET", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+/versions/[^/:]+):render$"),
         "render_version"),
        ("GET", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+/versions/[^/:]+)$"), "get_version"),
        ("PATCH", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+/versions/[^/:]+)$"),
         "update_version"),
        ("DELETE", re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/parameters/[^/]+/versions/[^/:]+)$"),
         "delete_version"),
    ]  # fmt: skip

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        for verb, pattern, action in self._ROUTES:
            m = pattern.match(path)
            if m and verb == method:
                with self.state.lock:
                    return getattr(self, "_" + action)(m.group(1), query, body)
        raise ApiError(404, f"no route for {method} {path}")

    # -- parameters ------------------------------------------------------------------------
    def _param(self, name: str) -> pm.Parameter:
        p = self.state.parameters.get(name)
        if p is None:
            raise ApiError(404, f"Parameter [{name}] not found.")
        return p

    @staticmethod
    def _check_labels(labels: dict[str, str]) -> None:
        if len(labels) > MAX_LABELS:
            raise ApiError(400, f"at most {MAX_LABELS} labels are allowed")
        for k, v in labels.items():
            if not LABEL_KEY_RE.match(k):
                raise ApiError(400, f"invalid label key {k!r}")
            if not LABEL_VALUE_RE.match(v):
                raise ApiError(400, f"invalid value for label {k!r}")

    def _list_parameters(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        items = [p for n, p in self.state.parameters.items() if n.startswith(parent + "/parameters/")]
        items = [p for p in items if _matches(query.get("filter", ""), dict(p.labels))]
        page, token = _page(items, query)
        return pm.ListParametersResponse(parameters=page, next_page_token=token)

    def _create_parameter(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        pid = query.get("parameterId", "")
        if not ID_RE.match(pid):
            raise ApiError(
                400, "parameter_id must be 1-63 characters of [A-Za-z0-9_-], not starting with '-'"
            )
        name = f"{parent}/parameters/{pid}"
        if name in self.state.parameters:
            raise ApiError(409, f"Parameter [{name}] already exists.")
        p = pm.Parameter.from_json(json.dumps(body), ignore_unknown_fields=False)
        self._check_labels(dict(p.labels))
        p.name = name
        if p.format_ == pm.ParameterFormat.PARAMETER_FORMAT_UNSPECIFIED:
            p.format_ = pm.ParameterFormat.UNFORMATTED
        p.create_time = p.update_time = _now()
        project, location = parent.split("/")[1], parent.split("/")[3]
        p.policy_member = {
            "iam_policy_uid_principal": "principal://parametermanager.googleapis.com/projects/"
            f"{project}/uid/locations/{location}/parameters/{uuid.uuid4()}"
        }
        self.state.parameters[name] = p
        self.state.versions[name] = {}
        return p

    def _get_parameter(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        return self._param(name)

    def _update_parameter(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        p = self._param(name)
        new = pm.Parameter.from_json(json.dumps(body), ignore_unknown_fields=False)
        paths = [x for x in query.get("updateMask", "").split(",") if x]
        if not paths:
            paths = [f for f in ("labels", "kms_key") if f in body or _camel(f) in body]
        for f in paths:
            f = _snake(f)
            if f == "format":
                if new.format_ != p.format_:
                    raise ApiError(400, "format is immutable")
            elif f == "labels":
                self._check_labels(dict(new.labels))
                p.labels.clear()
                p.labels.update(dict(new.labels))
            elif f == "kms_key":
                p.kms_key = new.kms_key
            else:
                raise ApiError(400, f"field {f!r} cannot be updated")
        if "format" in body and new.format_ != p.format_ and "format" not in paths:
            raise ApiError(400, "format is immutable")
        p.update_time = _now()
        return p

    def _delete_parameter(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        self._param(name)
        if self.state.versions.get(name):
            raise ApiError(400, f"Parameter [{name}] has versions; delete them first.", "FAILED_PRECONDITION")
        del self.state.parameters[name]
        self.state.versions.pop(name, None)
        return None

    # -- versions --------------------------------------------------------------------------
    def _version(self, name: str) -> pm.ParameterVersion:
        parent, _, vid = name.rpartition("/versions/")
        self._param(parent)
        v = self.state.versions[parent].get(vid)
        if v is None:
            raise ApiError(404, f"ParameterVersion [{name}] not found.")
        return v

    @staticmethod
    def _view(v: pm.ParameterVersion, view: str) -> pm.ParameterVersion:
        if v.disabled or view in ("1", "BASIC"):
            out = pm.ParameterVersion(v)
            out.payload = None
            return out
        return v

    def _list_versions(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        self._param(parent)
        items = [self._view(v, "BASIC") for v in self.state.versions[parent].values()]
        page, token = _page(items, query)
        return pm.ListParameterVersionsResponse(parameter_versions=page, next_page_token=token)

    def _create_version(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        p = self._param(parent)
        vid = query.get("parameterVersionId", "")
        if not ID_RE.match(vid):
            raise ApiError(
                400, "parameter_version_id must be 1-63 characters of [A-Za-z0-9_-], not starting with '-'"
            )
        if vid in self.state.versions[parent]:
            raise ApiError(409, f"ParameterVersion [{parent}/versions/{vid}] already exists.")
        v = pm.ParameterVersion.from_json(json.dumps(body), ignore_unknown_fields=False)
        data = bytes(v.payload.data)
        if "payload" not in body:
            raise ApiError(400, "payload is required")
        if len(data) > MAX_PAYLOAD:
            raise ApiError(400, f"payload is {len(data)} bytes; at most {MAX_PAYLOAD} are allowed")
        _check_format(p.format_, data)
        v.name = f"{parent}/versions/{vid}"
        v.create_time = v.update_time = _now()
        self.state.versions[parent][vid] = v
        return v

    def _get_version(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        return self._view(self._version(name), query.get("view", ""))

    def _update_version(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        v = self._version(name)
        paths = [_snake(x) for x in query.get("updateMask", "").split(",") if x]
        if not paths:
            paths = [_snake(k) for k in body if k != "name"]
        for f in paths:
            if f != "disabled":
                raise ApiError(400, f"ParameterVersion field {f!r} is immutable")
        v.disabled = bool(body.get("disabled", False))
        v.update_time = _now()
        return self._view(v, "")

    def _delete_version(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        self._version(name)
        parent, _, vid = name.rpartition("/versions/")
        del self.state.versions[parent][vid]
        return None

    def _render_version(self, name: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        v = self._version(name)
        if v.disabled:
            raise ApiError(
                400, f"ParameterVersion [{name}] is disabled and cannot be rendered.", "FAILED_PRECONDITION"
            )
        parent = name.rpartition("/versions/")[0]
        fmt = self.state.parameters[parent].format_
        data = bytes(v.payload.data)
        rendered = data
        if fmt in (pm.ParameterFormat.JSON, pm.ParameterFormat.YAML):
            rendered = self._render(data.decode("utf-8"), fmt).encode("utf-8")
        return pm.RenderParameterVersionResponse(
            parameter_version=name, payload=v.payload, rendered_payload=rendered
        )

    def _render(self, text: str, fmt: pm.ParameterFormat) -> str:
        def sub(m: re.Match[str]) -> str:
            value = self.secret_resolver(m["name"]) if self.secret_resolver else None
            if value is None:
                raise ApiError(400, f"secret reference {m['name']} cannot be resolved", "FAILED_PRECONDITION")
            s = value.decode("utf-8")
            return json.dumps(s)[1:-1] if fmt == pm.ParameterFormat.JSON else s

        return REF_RE.sub(sub, text)


# -- helpers -------------------------------------------------------------------------------
def _camel(s: str) -> str:
    head, *rest = s.split("_")
    return head + "".join(w.title() for w in rest)


def _snake(s: str) -> str:
    s = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), s)
    return "format" if s in ("format_", "format") else s


def _check_format(fmt: pm.ParameterFormat, data: bytes) -> None:
    refs = len(REF_RE.findall(data.decode("utf-8", "replace")))
    if refs > MAX_REFS:
        raise ApiError(400, f"a parameter version may hold at most {MAX_REFS} secret references")
    if fmt == pm.ParameterFormat.JSON:
        try:
            json.loads(data)
        except ValueError:
            raise ApiError(400, "payload is not valid JSON") from None
    elif fmt == pm.ParameterFormat.YAML:
        try:
            yaml.safe_load(data)
        except yaml.YAMLError:
            raise ApiError(400, "payload is not valid YAML") from None


_TERM = re.compile(r'^labels\.(?P<key>[a-z][a-z0-9_-]*)\s*(?P<op>[=:])\s*"?(?P<value>[^"]*)"?$')


def _matches(filter_text: str, labels: dict[str, str]) -> bool:
    if not filter_text.strip():
        return True
    for term in re.split(r"\s+AND\s+", filter_text.strip()):
        m = _TERM.match(term.strip())
        if not m:
            raise ApiError(400, f"unsupported filter term {term!r}")
        key, op, value = m["key"], m["op"], m["value"]
        if op == ":" and value == "*":
            if key not in labels:
                return False
        elif labels.get(key) != value:
            return False
    return True


def _page(items: list[Any], query: dict[str, str]) -> tuple[list[Any], str]:
    size = int(query.get("pageSize") or 0) or 100
    size = min(size, 1000)
    start = int(query.get("pageToken") or 0)
    page = items[start : start + size]
    token = str(start + size) if start + size < len(items) else ""
    return page, token
