"""Shared AWS plumbing for the Secrets Manager and Parameter Store stores.

* `client(service, options)`: one cached boto3 client per (service, region, endpoint, role),
  built lazily (boto3 is imported here, never at module import), with botocore adaptive
  retries (client-side rate limiting + backoff on throttling) and a connection pool sized for
  the store's concurrency. `provider.aws.auth.roleArn` is assumed with refreshable credentials.
* Tag values: AWS tag values allow ``[A-Za-z0-9 _.:/=+-@]`` (plus Unicode letters) and 256
  characters; ours may hold anything (a source path), so values outside that set are stored
  as ``b64:<urlsafe base64>`` and decoded when listed.
* `store_error`: botocore errors → `StoreError`, transient for throttling/5xx/timeouts,
  `NotFoundError` / `ConflictError` / `AuthError` by error code. The message carries the
  operation, the entry name and the AWS error code, never AWS's own message (a
  ValidationException may echo the request, including a value).
* `secret_string` and `hand_off`: the Lambda handler's two SDK calls of its own (the
  ``SMF_ENV_SECRET`` bundle; queueing a delivery to SQS or an asynchronous invocation).
* `AwsStore`: the base of both AWS stores (client, call counting, `_call`, error mapping).
  Retries are botocore's alone (`RETRIES`): `sdk_retries` is set, so apply does not retry
  AWS errors a second time.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import StoreError
from core.stores.base import AuthError, ConflictError, NotFoundError, Store

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

#: botocore retry settings: adaptive = standard retries plus a client-side token bucket that
#: slows the sender down when AWS answers with throttling errors.
RETRIES = {"mode": "adaptive", "max_attempts": 10}

#: Error codes that mean "try again later".
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "TooManyUpdates",
        "LimitExceededException",  # Secrets Manager: concurrent updates of one secret
        "InternalServiceError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)

#: Error codes that mean "the entry is not there" / "the name is taken".
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "ParameterNotFound"})
EXISTS_CODES = frozenset({"ResourceExistsException", "ParameterAlreadyExists"})
#: Error codes that mean the credentials were refused.
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidIdentityToken",
    }
)
#: What to set when no credentials are found (one line, no values).
NO_CREDENTIALS_HINT = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
    "or run with an IAM role (for IRSA: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
)

_CLIENTS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def aws_options(config: SecretManagerConfig) -> dict[str, Any]:
    """The `spec.provider.aws` section (defaults applied by core.config)."""
    return dict(config.provider_options or {})


def client(service: str, options: dict[str, Any], *, pool: int = 10) -> Any:
    """A cached boto3 client for `service` configured from `provider.aws` options."""
    region = (
        options.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    endpoint = options.get("endpointUrl") or None
    role = (options.get("auth") or {}).get("roleArn") or None
    key = (service, region, endpoint, role, pool)
    with _LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            return cached
        made = _make_client(service, region, endpoint, role, pool)
        _CLIENTS[key] = made
        return made


def _make_client(service: str, region: str, endpoint: str | None, role: str | None, pool: int) -> Any:
    import boto3
    from botocore.config import Config

    _check_web_identity_token()
    session = boto3.session.Session(region_name=region)
    if role:
        _assume_role(session, role, endpoint)
    cfg = Config(
        retries=dict(RETRIES),
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="secret-manager-functions",
    )
    return session.client(service, endpoint_url=endpoint, config=cfg)


def _check_web_identity_token() -> None:
    """Refuse, in one line, a web identity (IRSA / EKS Pod Identity style) setup whose token
    file is missing: botocore would log a traceback on every refresh and then fail each call
    with a bare FileNotFoundError."""
    token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE", "").strip()
    if token_file and not os.access(token_file, os.R_OK):
        raise AuthError(
            f"aws: the web identity token file {token_file} (AWS_WEB_IDENTITY_TOKEN_FILE) is missing "
            "or unreadable: run where the token is mounted (IRSA), or unset AWS_WEB_IDENTITY_TOKEN_FILE "
            "and AWS_ROLE_ARN and use other credentials",
            field="AWS_WEB_IDENTITY_TOKEN_FILE",
        )


def _assume_role(session: Any, role_arn: str, endpoint: str | None) -> None:
    """Swap the session's credentials for refreshable ones from sts:AssumeRole."""
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    core_session = session._session  # the botocore session boto3 wraps
    source = core_session.get_credentials()
    if source is None:  # botocore would fail later with an AttributeError on None
        raise AuthError(
            f"aws: cannot assume {role_arn} (spec.provider.aws.auth.roleArn): {NO_CREDENTIALS_HINT}",
            field="spec.provider.aws.auth",
        )

    def create_client(*args: Any, **kwargs: Any) -> Any:
        if endpoint:
            kwargs.setdefault("endpoint_url", endpoint)
        return core_session.create_client(*args, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=create_client,
        source_credentials=source,
        role_arn=role_arn,
        extra_args={"RoleSessionName": "secret-manager-functions"},
    )
    core_session._credentials = DeferredRefreshableCredentials(
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )


def reset_clients() -> None:
    """Forget cached clients (tests that restart their endpoint)."""
    with _LOCK:
        _CLIENTS.clear()
        _FP_KEYS.clear()


#: Env var naming a Secrets Manager secret (name or ARN) that holds the fingerprint key.
FINGERPRINT_SECRET_ENV = "SMF_FINGERPRINT_KEY_SECRET"  # noqa: S105 - an env var name
_FP_KEYS: dict[str, bytes] = {}


def fingerprint_key_from_secret(sm_client: Any | None = None) -> bytes | None:
    """The fingerprint HMAC key from the secret named by SMF_FINGERPRINT_KEY_SECRET (cached).

    `SMF_FINGERPRINT_KEY` (read by core.fingerprint) wins when set; this lets a Lambda keep
    the key in Secrets Manager instead of its environment.
    """
    import hashlib

    secret_id = os.environ.get(FINGERPRINT_SECRET_ENV)
    if not secret_id:
        return None
    with _LOCK:
        if secret_id in _FP_KEYS:
            return _FP_KEYS[secret_id]
    if sm_client is None:
        sm_client = client("secretsmanager", {})
    try:
        text = sm_client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except Exception as exc:  # noqa: BLE001
        raise store_error(
            exc, store="aws-secrets-manager", op="GetSecretValue", name=FINGERPRINT_SECRET_ENV
        ) from None
    if not text:
        return None
    key = hashlib.sha256(text.encode("utf-8")).digest()
    with _LOCK:
        _FP_KEYS[secret_id] = key
    return key


def secret_string(secret_id: str) -> str:
    """One secret's SecretString (``{}`` when it has none): the Lambda handler's
    ``SMF_ENV_SECRET`` bundle. Errors name the operation and AWS's code, never its message."""
    try:
        value = client("secretsmanager", {}).get_secret_value(SecretId=secret_id)
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, store="aws-secrets-manager", op="GetSecretValue", name=secret_id) from None
    return str(value.get("SecretString") or "{}")


def hand_off(message: str) -> dict[str, str]:
    """Queue one intake message for the worker: to SQS (``SMF_QUEUE_URL``), or as an
    asynchronous invocation of ``SMF_WORKER_FUNCTION`` (``SMF_HANDOFF=invoke``; Lambda holds
    the payload 256 KiB, as SQS does). Returns what the webhook's answer reports."""
    import json

    how = (os.environ.get("SMF_HANDOFF") or ("sqs" if os.environ.get("SMF_QUEUE_URL") else "invoke")).lower()
    if how == "sqs":
        resp = client("sqs", {}).send_message(QueueUrl=os.environ["SMF_QUEUE_URL"], MessageBody=message)
        return {"handoff": "sqs", "message_id": resp.get("MessageId", "")}
    target = os.environ.get("SMF_WORKER_FUNCTION") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not target:
        raise RuntimeError("no hand-off target: set SMF_QUEUE_URL or SMF_WORKER_FUNCTION")
    payload = json.dumps({"smf": message}).encode()
    resp = client("lambda", {}).invoke(FunctionName=target, InvocationType="Event", Payload=payload)
    return {"handoff": "invoke", "invoke_status": str(resp.get("StatusCode", ""))}


# -- errors -------------------------------------------------------------------------------
def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def store_error(exc: BaseException, *, store: str, op: str, name: str | None = None) -> StoreError:
    """Map a botocore exception to a StoreError that names the call, never a value."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    where = f" for {name}" if name else ""
    if isinstance(exc, ClientError):
        code = error_code(exc) or "UnknownError"
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        message = f"{store}: {op}{where} failed: {code} (HTTP {status})"
        if code in NOT_FOUND_CODES:
            return NotFoundError(message, code=code, field=name)
        if code in EXISTS_CODES:
            return ConflictError(message, code=code, field=name)
        if code in AUTH_CODES:
            return AuthError(message, code=code, field=name)
        transient = code in TRANSIENT_CODES or status >= 500 or status == 429
        return StoreError(message, transient=transient, code=code, field=name)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AuthError(f"{store}: {op} failed: {NO_CREDENTIALS_HINT}", field=name)
    if isinstance(exc, AuthError):
        return exc
    if isinstance(
        exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
    ):
        return StoreError(f"{store}: {op}{where} failed: {type(exc).__name__}", transient=True, field=name)
    return StoreError(f"{store}: {op}{where} failed: {type(exc).__name__}", field=name)


class AwsStore(Store):
    """What the Secrets Manager and Parameter Store stores share: a cached boto3 client,
    counted calls through `_call`, and `store_error` as the error mapper."""

    #: botocore's adaptive retry mode retries throttling and 5xx (see `RETRIES`).
    sdk_retries: ClassVar[bool] = True
    #: boto3 service name (``secretsmanager``, ``ssm``).
    service: ClassVar[str]

    def __init__(self, client: Any, options: dict[str, Any] | None = None) -> None:
        self.client = client
        self.options = dict(options or {})
        self.calls: dict[str, int] = {}

    @classmethod
    def client_for(cls, config: SecretManagerConfig) -> tuple[Any, dict[str, Any]]:
        """(client, provider.aws options) for `config`, the pool sized for apply's writers."""
        opts = aws_options(config)
        pool = max(cls.max_concurrency, config.sync.concurrency or 0) + 2
        return client(cls.service, opts, pool=pool), opts

    def map_error(self, exc: Exception, *, op: str, name: str | None) -> StoreError:
        return store_error(exc, store=self.kind, op=op, name=name)

    def close(self) -> None:
        """Clients are cached per process (warm invocations reuse them): nothing to release."""


# -- tags -----------------------------------------------------------------------------------
_PLAIN = re.compile(r"^[A-Za-z0-9 _.:/=+@-]*$")
B64_MARK = "b64:"
MAX_TAG_VALUE = 256
#: Metadata that is provenance only and may be shortened to fit a tag; the rest must fit.
TRUNCATABLE = frozenset({"smf-source", "smf-repo"})


def encode_tag_value(value: str) -> str:
    if _PLAIN.match(value) and not value.startswith(B64_MARK):
        return value
    return B64_MARK + base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")


def decode_tag_value(value: str | None) -> str | None:
    if value is None or not value.startswith(B64_MARK):
        return value
    try:
        return base64.urlsafe_b64decode(value[len(B64_MARK) :].encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return value


def fit_tag(key: str, value: str, *, store: str, name: str) -> str:
    """Encode `value` for a tag; shorten provenance values that do not fit, refuse others."""
    encoded = encode_tag_value(value)
    if len(encoded) <= MAX_TAG_VALUE:
        return encoded
    if key in TRUNCATABLE:
        cut = value
        while cut and len(encode_tag_value(cut + "...")) > MAX_TAG_VALUE:
            cut = cut[:-8]
        return encode_tag_value(cut + "...")
    raise StoreError(f"{store}: tag {key} of {name} is longer than {MAX_TAG_VALUE} characters", field=name)


def metadata_tags(
    meta: dict[str, str], extra: dict[str, str] | None, *, store: str, name: str
) -> list[dict[str, str]]:
    """Our metadata plus the config's extra tags, as an AWS Tags list."""
    tags = {k: str(v) for k, v in (extra or {}).items()}
    for key, value in meta.items():
        tags[key] = fit_tag(key, value, store=store, name=name)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def decoded_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tag values as written before `encode_tag_value` (what `DesiredEntry.metadata()` gave)."""
    return {k: decode_tag_value(v) or "" for k, v in tags.items()}


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
