"""Errors that name the file and line or field, and never carry a secret value.

Every error raised on bad input is a `SyncError` (or subclass). Messages are built from names,
paths and positions only: callers must never interpolate a value read from a secret file.
"""

from __future__ import annotations


class SyncError(Exception):
    """A problem with user input or a store, located as precisely as we can.

    `path` is the repo-relative file (or config file), `line` a 1-based line number and
    `field` a dotted field path (``spec.secrets.environment``) or a key name.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line:
                where += f":{self.line}"
        if self.field:
            where = f"{where} ({self.field})" if where else self.field
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        for attr in ("path", "line", "field"):
            value = getattr(self, attr)
            if value is not None:
                out[attr] = value
        return out


class ConfigError(SyncError):
    """A SecretManagerConfig document is invalid (unknown field, wrong type, missing field)."""


class ParseError(SyncError):
    """A discovered file could not be parsed (broken YAML, bad .properties escape, ...)."""


class DecryptError(SyncError):
    """A SOPS file could not be decrypted or failed its integrity check (MAC, AAD)."""


class NamingError(SyncError):
    """A key maps to a name the store would refuse, or two keys map to the same name."""


class GuardError(SyncError):
    """A safety guard refused work Git asks for (e.g. more deletes than
    ``sync.maxDeleteFraction``): nothing is broken, but the run is only partial."""


class StoreError(SyncError):
    """A store call failed. `transient` errors are retried (by the SDK or by apply).

    `code` is the service's error code when it gave one (``InvalidRequestException``), for
    the few places that must tell two failures of one call apart without reading text.
    """

    def __init__(
        self, message: str, *, transient: bool = False, code: str | None = None, **where: object
    ) -> None:
        self.transient = transient
        self.code = code
        super().__init__(message, **where)  # type: ignore[arg-type]


class WebhookError(SyncError):
    """A webhook request was rejected; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class SourceError(SyncError):
    """The source repository could not be fetched or read."""
