"""Git intake: the one function every cloud's webhook handler calls, and the scheduled resync.

``handle_webhook(headers, body, configs, secret=...)``:
verify (core.webhook) → drop a delivery already handled by this instance → match configs to
the pushed repository and branch → fetch exactly the pushed commit (core.git_fetch, depth 1,
in memory or in a warm cache) → changed paths (the payload's lists when complete, else a tree
diff before..after; None for a new branch = everything) → ``core.sync.run(...,
changed_paths=...)`` → ``(status, report_dict)``.

A push that touches no file of any matched config makes no store call at all (discovery
finds no affected service, and run() opens no store). Ordering is enforced by plan: every
entry records the commit it was written from, and an incoming commit that is an ancestor of
the recorded one is skipped (`GitCommitSource.is_ancestor`).

The delivery-id cache is a bounded per-instance LRU so a retried delivery hitting the same
warm instance is answered at once; the real guarantee is idempotence (fingerprints make a
repeated apply a no-op), so a retry on another instance is harmless.

``resync(configs)`` fetches the tip of every configured (repository, branch), reconciles
everything and checks drift — what a schedule calls.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.errors import SourceError, SyncError
from core.git_fetch import GitCommitSource, fetch_commit
from core.webhook import (
    Ignored,
    PushEvent,
    Rejected,
    configs_for_push,
    normalize_repo_url,
    verify_and_parse,
)

log = logging.getLogger("smf.intake")

#: (store kind, config) → Store, as core.sync.run takes it.
StoreFactory = Callable[[str, Any], Any]
#: config → Git token (or None), e.g. read from the cloud's secret store.
TokenResolver = Callable[[Any], "str | None"]


class DeliveryCache:
    """A bounded, thread-safe LRU of delivery ids: 'pending' while handled, then 'done'."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, delivery_id: str | None) -> str | None:
        """Claim a delivery. Returns None when claimed, else its state ('pending'/'done')."""
        if not delivery_id:
            return None
        with self._lock:
            state = self._items.get(delivery_id)
            if state is not None:
                self._items.move_to_end(delivery_id)
                return state
            self._items[delivery_id] = "pending"
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return None

    def finish(self, delivery_id: str | None, ok: bool) -> None:
        if not delivery_id:
            return
        with self._lock:
            if ok:
                self._items[delivery_id] = "done"
            else:  # a failed delivery may be retried by the host
                self._items.pop(delivery_id, None)

    def __len__(self) -> int:
        return len(self._items)


_DELIVERIES = DeliveryCache()


# --- secrets and credentials -----------------------------------------------------------
def _secret_store_reader(store_factory: StoreFactory | None) -> Callable[[Any, str], str]:
    def read(config: Any, name: str) -> str:
        from core.route import secret_store

        kind = secret_store(config)
        if store_factory is not None:
            store = store_factory(kind, config)
        else:
            from core.stores import open_store

            store = open_store(kind, config)
        try:
            return store.read_secret(name).strip()
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()

    return read


def webhook_secret(
    configs: Sequence[Any],
    *,
    env: Mapping[str, str] | None = None,
    store_factory: StoreFactory | None = None,
) -> str | None:
    """The webhook secret: ``WEBHOOK_SECRET`` in the environment, else ``spec.webhook.secret``,
    else ``spec.webhook.secretRef`` read from the config's secret store."""
    env = os.environ if env is None else env
    if env.get("WEBHOOK_SECRET"):
        return env["WEBHOOK_SECRET"]
    for cfg in configs:
        hook = getattr(cfg, "webhook", None) or {}
        if hook.get("secret"):
            return str(hook["secret"])
    for cfg in configs:
        hook = getattr(cfg, "webhook", None) or {}
        if hook.get("secretRef"):
            try:
                return _secret_store_reader(store_factory)(cfg, str(hook["secretRef"]))
            except Exception as exc:  # noqa: BLE001 - named, never the value
                raise SyncError(f"cannot read the webhook secret ({type(exc).__name__})",
                                field="spec.webhook.secretRef") from None  # fmt: skip
    return None


def default_token_resolver(
    store_factory: StoreFactory | None = None, env: Mapping[str, str] | None = None
) -> TokenResolver:
    """``spec.sourceRef.tokenSecret`` read from the config's secret store; else ``GIT_TOKEN``
    from the environment; else no token (public repository, git:// or file URL)."""
    env = os.environ if env is None else env
    reader = _secret_store_reader(store_factory)

    def resolve(config: Any) -> str | None:
        src = getattr(config, "source", None)
        name = getattr(src, "token_secret", None)
        if name:
            try:
                return reader(config, name)
            except Exception as exc:  # noqa: BLE001 - named, never the value
                raise SyncError(f"cannot read the Git token ({type(exc).__name__})",
                                field="spec.sourceRef.tokenSecret") from None  # fmt: skip
        return env.get("GIT_TOKEN") or None

    return resolve


def default_cache_dir() -> str | None:
    """Where a function keeps fetched objects between warm invocations (None = memory).

    ``GIT_CACHE_DIR`` wins; on AWS Lambda, Cloud Run and Azure Functions the temp directory
    is used (``/tmp`` is writable there and survives warm invocations)."""
    if os.environ.get("GIT_CACHE_DIR"):
        return os.environ["GIT_CACHE_DIR"] or None
    in_function = any(
        os.environ.get(v) for v in ("AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "FUNCTIONS_WORKER_RUNTIME")
    )
    if in_function:
        import tempfile

        return os.path.join(tempfile.gettempdir(), "smf-git-cache")
    return None


# --- the webhook ---------------------------------------------------------------------
def _provider_of(configs: Sequence[Any]) -> str | None:
    named = {(getattr(c, "webhook", None) or {}).get("provider") for c in configs}
    named.discard(None)
    return named.pop() if len(named) == 1 else None


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    configs: Sequence[Any],
    *,
    secret: str | bytes | None,
    store_factory: StoreFactory | None = None,
    provider: str | None = None,
    token_resolver: TokenResolver | None = None,
    cache_dir: str | None = None,
    deliveries: DeliveryCache | None = None,
    max_body: int | None = None,
    apply: bool = True,
) -> tuple[int, dict[str, Any]]:
    """Verify, fetch and sync one push delivery. Returns (HTTP status, JSON-able report)."""
    deliveries = _DELIVERIES if deliveries is None else deliveries
    kw: dict[str, Any] = {} if max_body is None else {"max_body": max_body}
    tags = any(getattr(getattr(c, "source", None), "tags", False) for c in configs)
    outcome = verify_and_parse(
        headers, body, secret=secret or b"", provider=provider or _provider_of(configs),
        tags=tags, **kw,
    )  # fmt: skip
    if isinstance(outcome, Rejected):
        log.warning("webhook rejected", extra={"status": outcome.status, "reason": outcome.reason})
        return outcome.status, {"status": "rejected", "reason": outcome.reason}
    if isinstance(outcome, Ignored):
        return outcome.status, {"status": "ignored", "reason": outcome.reason,
                                "event": outcome.event, "delivery_id": outcome.delivery_id}  # fmt: skip
    event: PushEvent = outcome
    state = deliveries.begin(event.delivery_id)
    if state is not None:
        return 200, {"status": "duplicate", "delivery_id": event.delivery_id,
                     "reason": f"delivery already {'handled' if state == 'done' else 'in progress'}"}  # fmt: skip
    ok = False
    try:
        status, out = _handle_push(
            event, configs, store_factory=store_factory,
            token_resolver=token_resolver or default_token_resolver(store_factory),
            cache_dir=cache_dir if cache_dir is not None else default_cache_dir(), apply=apply,
        )  # fmt: skip
        ok = status < 500
        return status, out
    finally:
        deliveries.finish(event.delivery_id, ok)


def _handle_push(
    event: PushEvent,
    configs: Sequence[Any],
    *,
    store_factory: StoreFactory | None,
    token_resolver: TokenResolver,
    cache_dir: str | None,
    apply: bool,
) -> tuple[int, dict[str, Any]]:
    from core.sync import run

    results: list[dict[str, Any]] = []
    worst = 200
    for ev in [event, *event.more]:
        matched = configs_for_push(configs, ev)
        base = {"ref": ev.ref, "after": ev.after, "delivery_id": ev.delivery_id}
        if not matched:
            results.append({**base, "status": "ignored",
                            "reason": "no config follows this repository and branch"})  # fmt: skip
            continue
        cfg0 = matched[0]
        url = cfg0.source.url
        try:
            token = token_resolver(cfg0)
            source = fetch_commit(url, ev.after, token=token,
                                  username=getattr(cfg0.source, "username", None),
                                  cache_dir=cache_dir, branch=ev.branch)  # fmt: skip
        except SyncError as exc:
            log.error("fetch failed", extra={"error": str(exc)})
            results.append({**base, "status": "error", "errors": [exc.to_dict()]})
            worst = max(worst, 502 if isinstance(exc, SourceError) else 500)
            continue
        if (
            source.tip
            and source.tip != source.commit
            and source.is_ancestor(source.commit, source.tip) is False
        ):
            # The pushed commit is no longer on the branch (force-pushed away since): a late
            # delivery must not bring abandoned values back.
            source.close()
            results.append({**base, "status": "superseded", "tip": source.tip,
                            "reason": "the pushed commit is no longer on the branch"})  # fmt: skip
            continue
        try:
            changed = changed_paths_for(ev, source)
            report = run(list(matched), source, apply=apply, changed_paths=changed,
                         store_factory=store_factory)  # fmt: skip
        finally:
            source.close()
        data = report.to_dict()
        results.append({
            **base,
            "status": "applied" if apply else "planned",
            "configs": [c.name for c in matched],
            "changed_paths": None if changed is None else len(changed),
            "fetch": source.stats,
            "report": data,
        })  # fmt: skip
    # Errors in the repository's content are reported with 200: the host retrying (or
    # disabling a failing hook, as GitLab does) would not help. A failed fetch is a 502 so
    # the host may retry the delivery.
    errors = any(_not_ok(r) for r in results)
    if worst < 400 and all(r["status"] == "ignored" for r in results):
        worst = 202  # no ref of this push is followed by any config
    label = "ignored" if worst == 202 else "error" if worst >= 400 else "partial" if errors else "ok"
    return worst, {"status": label, "provider": event.provider, "results": results}


def _not_ok(result: dict[str, Any]) -> bool:
    """A fetch error, or a run whose outcome is failed or partial (conflicts, guards)."""
    return bool(result.get("errors")) or (result.get("report") or {}).get("outcome", "ok") != "ok"


def changed_paths_for(event: PushEvent, source: GitCommitSource) -> set[str] | None:
    """The payload's file lists when complete and trustworthy, else a tree diff; None means
    "reconcile everything" (a new branch, or `before` no longer on the server)."""
    if event.paths_reliable:
        return set(event.changed_paths or ())
    return source.changed_paths(event.before, event.after)


# --- scheduled resync ------------------------------------------------------------------
def resync(
    configs: Sequence[Any],
    *,
    store_factory: StoreFactory | None = None,
    token_resolver: TokenResolver | None = None,
    cache_dir: str | None = None,
    apply: bool = True,
    drift: bool = True,
) -> tuple[int, dict[str, Any]]:
    """Fetch the tip of each configured (repository, branch) and reconcile everything,
    reading store values to find drift (reported or corrected per ``spec.sync.drift``)."""
    from core.sync import run

    resolve = token_resolver or default_token_resolver(store_factory)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    groups: dict[tuple[str, str], list[Any]] = {}
    results: list[dict[str, Any]] = []
    for cfg in configs:
        if getattr(cfg, "suspend_git_pulls", False):  # the controller's spec.suspendGitPulls
            results.append({"configs": [cfg.name], "status": "skipped", "reason": "spec.suspendGitPulls"})
            continue
        src = getattr(cfg, "source", None)
        if src is None or not src.url:
            continue
        key = (normalize_repo_url(src.url), src.branch or "main")
        groups.setdefault(key, []).append(cfg)
    status = 200
    for (_, branch), group in groups.items():
        try:
            source = fetch_commit(group[0].source.url, branch, token=resolve(group[0]),
                                  username=getattr(group[0].source, "username", None),
                                  cache_dir=cache)  # fmt: skip
        except SyncError as exc:
            results.append({"configs": [c.name for c in group], "status": "error",
                            "errors": [exc.to_dict()]})  # fmt: skip
            status = 502
            continue
        try:
            report = run(list(group), source, apply=apply, changed_paths=None, drift=drift,
                         store_factory=store_factory)  # fmt: skip
        finally:
            source.close()
        data = report.to_dict()
        results.append({"configs": [c.name for c in group], "branch": branch,
                        "commit": source.commit, "status": "applied" if apply else "planned",
                        "report": data})  # fmt: skip
    errors = any(_not_ok(r) for r in results)
    label = "error" if status >= 400 else "partial" if errors else "ok"
    return status, {"status": label, "results": results}


def source_for(url: str, ref: str, *, config: Any = None, token: str | None = None,
               cache_dir: str | None = None) -> GitCommitSource:  # fmt: skip
    """`fetch_commit` with the config's credentials (used by the CLI's ``--source URL``)."""
    if token is None:
        token = os.environ.get("GIT_TOKEN") or None
    if token is None and config is not None:
        token = default_token_resolver()(config)
    username = getattr(getattr(config, "source", None), "username", None)
    return fetch_commit(url, ref, token=token, username=username, cache_dir=cache_dir)
