"""Git intake: the one way in for every trigger (cloud handlers, ``serve``, the queue).

Two entries, used by all three cloud handlers alike:

``decide(headers, body, configs, secret=..., queue=QueuePolicy|None)`` → a `Decision`:
    `Reject` (status, reason) | `Ignore` (reason) | `SyncNow` (the verified `PushEvent`) |
    `Queue` (one message in the format of core.messages). The body is verified and parsed
    exactly once, with the configs' webhook provider and tag settings. `handle_delivery`
    wraps it: claims the delivery id, syncs now or hands the message to the handler's
    ``send``, and returns an `Outcome` (status, JSON-able report).
``handle_message(raw, configs, secret=...)``
    A queued message: its MAC is checked (the event was verified at the webhook; the body is
    not parsed again) and its kind runs (``push``, ``resync``; `register_job_kind` adds more).

After every sync the `AFTER_SYNC` hooks run (`on_after_sync`): where reporting results back
(commit statuses, notifications) plugs in. `log_summary` turns an Outcome into the one
structured log line every cloud emits; `counts_by_store` gives the handlers their metrics.

A push: match configs to the pushed repository and branch → fetch exactly the pushed commit
(core.git_fetch, depth 1, in memory or in a warm cache) → changed paths (the payload's lists
when complete, else a tree diff before..after; None for a new branch = everything) →
``core.sync.run(..., changed_paths=...)``. A push that touches no file of any matched config
makes no store call at all. Ordering is enforced by plan: every entry records the commit it
was written from, and an incoming commit that is an ancestor of the recorded one is skipped.

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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core import messages
from core.errors import ConfigError, SourceError, SyncError, WebhookError
from core.messages import Job
from core.settings import env_secret

if TYPE_CHECKING:
    from core.git_fetch import GitCommitSource
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
    from_env = env_secret("WEBHOOK_SECRET", env)
    if from_env:
        return from_env
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
        return env_secret("GIT_TOKEN", env)

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


# --- decisions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Reject:
    """Refuse the delivery: answer `status`; nothing else happens."""

    status: int
    reason: str
    provider: str | None = None
    action = "reject"

    def body(self) -> dict[str, Any]:
        return {"status": "rejected", "reason": self.reason}


@dataclass(frozen=True)
class Ignore:
    """A trusted delivery that needs no work (ping, other events, deletions, other repos)."""

    status: int
    reason: str
    provider: str | None = None
    event: str | None = None
    delivery_id: str | None = None
    #: "ignored", or "duplicate" for a delivery this instance has already taken.
    label: str = "ignored"
    action = "ignore"

    def body(self) -> dict[str, Any]:
        return {"status": self.label, "reason": self.reason, "event": self.event,
                "delivery_id": self.delivery_id}  # fmt: skip


@dataclass(frozen=True)
class SyncNow:
    """Sync the verified push in this invocation."""

    event: PushEvent
    action = "sync_now"
    status = 200


@dataclass(frozen=True)
class Queue:
    """Put `message` (the text of `job`) on the platform's queue and answer 202."""

    job: Job
    message: str
    event: PushEvent | None
    #: Why the message is not the plain event (the too-large policy), else None.
    note: str | None = None
    action = "queue"
    status = 202

    def body(self) -> dict[str, Any]:
        ev = self.event
        out: dict[str, Any] = {"status": "queued", "mode": "queued", "kind": self.job.kind,
                               "delivery_id": ev.delivery_id if ev else None,
                               "ref": ev.ref if ev else None, "after": ev.after if ev else None}  # fmt: skip
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Preview:
    """Plan the verified pull request in this invocation (nothing is written)."""

    event: Any  # core.pull_requests.PullRequestEvent
    action = "preview"
    status = 200


Decision = Reject | Ignore | SyncNow | Queue | Preview


@dataclass(frozen=True)
class QueuePolicy:
    """Where-to-queue: the platform queue's message size limit and when to use it.

    ``mode``: ``auto`` queues unless the payload lists at most `inline_max_paths` changed
    files for a single ref with a reliable file list; ``queue`` always; ``inline`` never."""

    max_bytes: int
    mode: str = "auto"
    inline_max_paths: int = 50

    @classmethod
    def from_env(cls, max_bytes: int, *, default_mode: str = "auto",
                 env: Mapping[str, str] | None = None) -> QueuePolicy:  # fmt: skip
        """``SMF_WEBHOOK_MODE``, ``SMF_INLINE_MAX_PATHS``, ``SMF_QUEUE_MAX_BYTES`` (old name
        ``SMF_HANDOFF_MAX_BYTES``) over the handler's defaults."""
        env = os.environ if env is None else env
        limit = env.get("SMF_QUEUE_MAX_BYTES") or env.get("SMF_HANDOFF_MAX_BYTES")
        mode = (env.get("SMF_WEBHOOK_MODE") or default_mode).strip().lower()
        if mode not in ("auto", "queue", "inline"):
            raise ConfigError(f"SMF_WEBHOOK_MODE must be auto, queue or inline, not {mode!r}",
                              field="SMF_WEBHOOK_MODE")  # fmt: skip
        return cls(int(limit) if limit else max_bytes, mode, int(env.get("SMF_INLINE_MAX_PATHS") or 50))

    def wants_queue(self, event: PushEvent) -> bool:
        if self.mode != "auto":
            return self.mode == "queue"
        many = len(event.changed_paths or ()) > self.inline_max_paths
        return bool(event.more) or not event.paths_reliable or many


def _provider_of(configs: Sequence[Any]) -> str | None:
    named = {(getattr(c, "webhook", None) or {}).get("provider") for c in configs}
    named.discard(None)
    return named.pop() if len(named) == 1 else None


def decide(
    headers: Mapping[str, str],
    body: bytes,
    configs: Sequence[Any],
    *,
    secret: str | bytes | None,
    queue: QueuePolicy | None = None,
    provider: str | None = None,
    max_body: int | None = None,
) -> Decision:
    """The one intake decision for a delivery: verify and parse the body (exactly once, with
    the configs' provider and tag settings), match configs, then sync now or queue.

    `queue` None means the platform has no queue here: every matched push syncs now."""
    kw: dict[str, Any] = {} if max_body is None else {"max_body": max_body}
    tags = any(getattr(getattr(c, "source", None), "tags", False) for c in configs)
    from core.pull_requests import PullRequestEvent, configs_for_pull_request, previews_enabled

    outcome = verify_and_parse(headers, body, secret=secret or b"", tags=tags,
                               provider=provider or _provider_of(configs),
                               pull_requests=previews_enabled(configs), **kw)  # fmt: skip
    if isinstance(outcome, Rejected):
        return Reject(outcome.status, outcome.reason, outcome.provider)
    if isinstance(outcome, Ignored):
        return Ignore(outcome.status, outcome.reason, outcome.provider, outcome.event, outcome.delivery_id)
    if isinstance(outcome, PullRequestEvent):
        # A pull request: a plan-only preview, inline or queued like a push (kind "preview").
        if not configs_for_pull_request(configs, outcome):
            return Ignore(202, "no config with previews follows this pull request's target branch",
                          outcome.provider, "pull_request", outcome.delivery_id)  # fmt: skip
        if queue is None or not queue.wants_queue(outcome):  # type: ignore[arg-type]
            return Preview(outcome)
        job = Job("preview", {"event": outcome.to_message()})
        return Queue(job, messages.encode(job, key=messages.mac_key(secret) if secret else None), outcome)  # type: ignore[arg-type]
    event: PushEvent = outcome
    if not any(configs_for_push(configs, ev) for ev in [event, *event.more]):
        return Ignore(202, "no config follows this repository and branch", event.provider, "push",
                      event.delivery_id)  # fmt: skip
    if queue is None or not queue.wants_queue(event):
        return SyncNow(event)
    return queue_push(event, configs, secret=secret, max_bytes=queue.max_bytes)


def queue_push(event: PushEvent, configs: Sequence[Any], *, secret: str | bytes | None,
               max_bytes: int) -> Queue:  # fmt: skip
    """The Queue decision for a verified push, by the too-large policy of core.messages:
    the event; else the event without file lists (the worker diffs before..after); else a
    resync of the configs the push matched."""
    key = messages.mac_key(secret) if secret else None
    job = Job("push", {"event": event.to_message()})
    text = messages.encode(job, key=key)
    if len(text) <= max_bytes:
        return Queue(job, text, event)
    lean = PushEvent.from_message(event.to_message())
    for ev in [lean, *lean.more]:
        ev.changed_paths = None
    job = Job("push", {"event": lean.to_message()})
    text = messages.encode(job, key=key)
    if len(text) <= max_bytes:
        return Queue(
            job, text, event, note="too large to queue with its file lists: the worker diffs before..after"
        )
    names = sorted({c.name for ev in [event, *event.more] for c in configs_for_push(configs, ev)})
    job = Job("resync", {"configs": names, "drift": False})
    return Queue(job, messages.encode(job, key=key), event,
                 note="too large to queue: a full resync of the matched configs is queued instead")  # fmt: skip


# --- running work --------------------------------------------------------------------
@dataclass
class RunContext:
    """How a job reaches stores and Git (tests and the local server pass their own)."""

    store_factory: StoreFactory | None = None
    token_resolver: TokenResolver | None = None
    cache_dir: str | None = None
    apply: bool = True
    #: Fan-out (core.fanout): the platform queue's send, the run state, the MAC key of work
    #: items (from the webhook secret, set by `handle_message`), the policy (None: from the
    #: environment), how a worker gets a commit's tree (None: fetch it) and its clock.
    enqueue: Send | None = None
    runstate: Any = None
    mac_key: bytes | None = None
    fanout: Any = None
    source_resolver: Callable[[Any, str], Any] | None = None
    clock: Callable[[], float] | None = None

    def tokens(self) -> TokenResolver:
        return self.token_resolver or default_token_resolver(self.store_factory)

    def cache(self) -> str | None:
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()


@dataclass
class Outcome:
    """What one delivery or queued job came to: the HTTP-style status, the JSON-able report
    (also the HTTP response body) and, for a sync, the events and configs it covered."""

    status: int
    body: dict[str, Any]
    kind: str
    events: list[PushEvent] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)
    decision: Any = None
    #: The `RunContext` the work ran with (after-sync hooks read secrets through its stores).
    context: Any = None


#: kind → runner(data, configs, context) → Outcome. Add a kind with `register_job_kind`.
JobRunner = Callable[[dict[str, Any], Sequence[Any], RunContext], Outcome]


@dataclass(frozen=True)
class JobKind:
    name: str
    run: JobRunner
    #: Whether a queued message of this kind must carry a valid MAC.
    signed: bool = True


JOB_KINDS: dict[str, JobKind] = {}


def register_job_kind(name: str, run: JobRunner, *, signed: bool = True) -> None:
    """Teach the worker a new message kind (the handlers need no change)."""
    JOB_KINDS[name] = JobKind(name, run, signed)


#: Called after every sync (inline or queued push, resync) with its Outcome and the configs.
AfterSync = Callable[[Outcome, Sequence[Any]], None]
AFTER_SYNC: list[AfterSync] = []


def on_after_sync(hook: AfterSync) -> AfterSync:
    """Register where "after a sync, report the result" plugs in (e.g. commit statuses).
    A hook that fails is logged and never fails the sync."""
    AFTER_SYNC.append(hook)
    return hook


def after_sync(outcome: Outcome, configs: Sequence[Any]) -> None:
    for hook in list(AFTER_SYNC):
        try:
            hook(outcome, configs)
        except Exception as exc:  # noqa: BLE001 - reporting never fails the sync
            log.warning("after-sync hook failed", extra={"hook": getattr(hook, "__name__", "?"),
                                                         "error_type": type(exc).__name__})  # fmt: skip


@on_after_sync
def _notify(outcome: Outcome, configs: Sequence[Any]) -> None:
    """``spec.notifications`` (core/results/notify.py, imported only when a config has some)."""
    if outcome.kind in ("push", "resync") and any(getattr(c, "notifications", None) for c in outcome.configs):
        from core.results import notify

        notify.send_for_outcome(outcome, read_secret=_secret_store_reader(None))


#: Called before a push is synced with (event, configs, context): e.g. "pending" statuses.
BeforeSync = Callable[[PushEvent, Sequence[Any], RunContext], None]
BEFORE_SYNC: list[BeforeSync] = []


def on_before_sync(hook: BeforeSync) -> BeforeSync:
    """Register a hook that runs before a push is synced; like after-sync, it never fails it."""
    BEFORE_SYNC.append(hook)
    return hook


def before_sync(event: PushEvent, configs: Sequence[Any], ctx: RunContext) -> None:
    for hook in list(BEFORE_SYNC):
        try:
            hook(event, configs, ctx)
        except Exception as exc:  # noqa: BLE001 - reporting never fails the sync
            log.warning("before-sync hook failed", extra={"hook": getattr(hook, "__name__", "?"),
                                                          "error_type": type(exc).__name__})  # fmt: skip


def run_push(event: PushEvent, configs: Sequence[Any], ctx: RunContext) -> Outcome:
    """Fetch and sync one verified push (every ref it updated)."""
    before_sync(event, configs, ctx)
    status, body = _handle_push(event, configs, store_factory=ctx.store_factory,
                                token_resolver=ctx.tokens(), cache_dir=ctx.cache(), apply=ctx.apply,
                                fan_out=_fan_out(ctx, "push"))  # fmt: skip
    matched = [c for ev in [event, *event.more] for c in configs_for_push(configs, ev)]
    outcome = Outcome(status, body, "push", [event, *event.more], matched, context=ctx)
    if not _all_fanned_out(body):  # a fanned-out run reports once, when its last item finishes
        after_sync(outcome, configs)
    return outcome


def _fan_out(ctx: RunContext, kind: str) -> Callable[..., dict[str, Any] | None] | None:
    """The fan-out decision for a job (core.fanout.dispatch), or None without a queue."""
    if ctx.enqueue is None or ctx.mac_key is None:
        return None

    def decide_fan_out(configs: Sequence[Any], source: Any, changed: set[str] | None, **kw: Any) -> Any:
        from core import fanout

        return fanout.dispatch(configs, source, changed, ctx, kind=kind, **kw)

    return decide_fan_out


def _all_fanned_out(body: Mapping[str, Any]) -> bool:
    results = body.get("results") or []
    return bool(results) and all(r.get("status") == "fanned-out" for r in results)


def _run_push_job(data: dict[str, Any], configs: Sequence[Any], ctx: RunContext) -> Outcome:
    return run_push(PushEvent.from_message(data.get("event")), configs, ctx)


def _run_resync_job(data: dict[str, Any], configs: Sequence[Any], ctx: RunContext) -> Outcome:
    names = data.get("configs")
    chosen = [c for c in configs if not isinstance(names, list) or c.name in names]
    status, body = resync(chosen, store_factory=ctx.store_factory, token_resolver=ctx.token_resolver,
                          cache_dir=ctx.cache_dir, apply=ctx.apply, drift=data.get("drift", True) is not False,
                          fan_out=_fan_out(ctx, "resync"))  # fmt: skip
    outcome = Outcome(status, body, "resync", configs=chosen)
    if not _all_fanned_out(body):
        after_sync(outcome, configs)
    return outcome


def run_preview_job(event: Any, configs: Sequence[Any], ctx: RunContext) -> Outcome:
    """Plan one verified pull request (core.pull_requests) and post its preview statuses."""
    from core.pull_requests import configs_for_pull_request, run_preview
    from core.results.statuses import post_pending

    matched = configs_for_pull_request(configs, event)
    allowed = [c for c in matched if not event.fork or (c.pull_requests or {}).get("forks")]
    if allowed and len(event.head_sha) == 40:  # (Bitbucket sends a short hash: known after the fetch)
        post_pending(allowed, event.head_sha, event.ref, ctx, preview=True)
    status, body = run_preview(event, configs, ctx)
    outcome = Outcome(status, body, "preview", [event], matched, context=ctx)
    after_sync(outcome, configs)
    return outcome


def _run_preview_job(data: dict[str, Any], configs: Sequence[Any], ctx: RunContext) -> Outcome:
    from core.pull_requests import PullRequestEvent

    return run_preview_job(PullRequestEvent.from_message(data.get("event")), configs, ctx)


def _run_work_job(data: dict[str, Any], configs: Sequence[Any], ctx: RunContext) -> Outcome:
    from core import fanout

    return fanout.run_item(data, configs, ctx)


register_job_kind("push", _run_push_job)
register_job_kind("resync", _run_resync_job, signed=False)
register_job_kind("preview", _run_preview_job)
register_job_kind("work", _run_work_job)


# --- commit statuses and check runs (core/results/statuses; imported only when configured) ----
def _pending_statuses(event: PushEvent, configs: Sequence[Any], ctx: RunContext) -> None:
    for ev in [event, *event.more]:
        matched = [c for c in configs_for_push(configs, ev) if getattr(c, "statuses", None)]
        if matched:
            from core.results.statuses import post_pending

            post_pending(matched, ev.after, ev.ref, ctx)


def _post_statuses(outcome: Outcome, configs: Sequence[Any]) -> None:
    if any(getattr(c, "statuses", None) for c in configs):
        from core.results.statuses import post_outcome

        post_outcome(outcome, configs)


on_before_sync(_pending_statuses)
on_after_sync(_post_statuses)


# --- the two entries ------------------------------------------------------------------
Send = Callable[[str], Mapping[str, Any]]


def handle_delivery(
    headers: Mapping[str, str],
    body: bytes,
    configs: Sequence[Any],
    *,
    secret: str | bytes | None,
    queue: QueuePolicy | None = None,
    send: Send | None = None,
    provider: str | None = None,
    max_body: int | None = None,
    deliveries: DeliveryCache | None = None,
    context: RunContext | None = None,
) -> Outcome:
    """A webhook delivery end to end: `decide`, then sync now or ``send(message)`` to the
    platform's queue (its return value — message id, transport — goes into the answer).
    A failed send is a 503 with nothing queued."""
    decision = decide(headers, body, configs, secret=secret, queue=queue if send else None,
                      provider=provider, max_body=max_body)  # fmt: skip
    if isinstance(decision, Reject):
        # (the caller logs the outcome once, with log_summary)
        return Outcome(decision.status, decision.body(), "rejected", decision=decision)
    if isinstance(decision, Ignore):
        return Outcome(decision.status, decision.body(), "ignored", decision=decision)
    deliveries = _DELIVERIES if deliveries is None else deliveries
    event = decision.event
    state = deliveries.begin(event.delivery_id)
    if state is not None:
        dup = Ignore(200, f"delivery already {'handled' if state == 'done' else 'in progress'}",
                     event.provider, "push", event.delivery_id, label="duplicate")  # fmt: skip
        return Outcome(200, dup.body(), "ignored", [event], decision=dup)
    ok = False
    try:
        if isinstance(decision, Queue):
            assert send is not None
            try:
                sent = dict(send(decision.message))
            except Exception as exc:  # noqa: BLE001 - named, never the message
                log.error("queueing failed", extra={"error_type": type(exc).__name__})
                return Outcome(503, {"status": "error", "reason": "could not queue the delivery"}, "queued",
                               [event], decision=decision)  # fmt: skip
            ok = True
            return Outcome(202, {**decision.body(), **sent}, "queued", [event], decision=decision)
        if isinstance(decision, Preview):
            outcome = run_preview_job(event, configs, context or RunContext())
        else:
            outcome = run_push(event, configs, context or RunContext())
        outcome.body["mode"] = "inline"
        outcome.decision = decision
        ok = outcome.status < 500
        return outcome
    finally:
        deliveries.finish(event.delivery_id, ok)


def handle_message(
    raw: str | bytes | Mapping[str, Any],
    configs: Sequence[Any],
    *,
    secret: str | bytes | None,
    context: RunContext | None = None,
) -> Outcome:
    """A message from the queue (already verified at the webhook): check its MAC, run its
    kind. A message that cannot be read or trusted is a 400 (not retried: it never will be)."""
    try:
        job = messages.decode(dict(raw) if isinstance(raw, Mapping) else raw,
                              key=messages.mac_key(secret) if secret else None)  # fmt: skip
    except messages.MessageError as exc:
        log.warning("queued message refused", extra={"reason": str(exc)})
        return Outcome(400, {"status": "rejected", "reason": str(exc)}, "rejected")
    kind = JOB_KINDS.get(job.kind)
    if kind is None:
        return Outcome(
            400, {"status": "rejected", "reason": f"unknown message kind {job.kind!r}"}, "rejected"
        )
    if kind.signed and not job.signed:
        if not secret:
            return Outcome(500, {"status": "error", "reason": "webhook secret is not configured"}, "rejected")
        return Outcome(400, {"status": "rejected", "reason": f"{job.kind} message without a MAC"}, "rejected")
    ctx = context or RunContext()
    if secret and ctx.mac_key is None:  # work items this job queues are signed like a push
        ctx = replace(ctx, mac_key=messages.mac_key(secret))
    try:
        return kind.run(job.data, configs, ctx)
    except WebhookError as exc:  # a signed message of a bad shape (an older or newer writer)
        return Outcome(400, {"status": "rejected", "reason": exc.message}, "rejected")


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
    """Verify, fetch and sync one push delivery now (no queue). Returns (status, report)."""
    ctx = RunContext(store_factory, token_resolver, cache_dir, apply)
    out = handle_delivery(headers, body, configs, secret=secret, provider=provider, max_body=max_body,
                          deliveries=deliveries, context=ctx)  # fmt: skip
    return out.status, out.body


def log_summary(outcome: Outcome) -> dict[str, Any]:
    """The one structured log summary every cloud emits for a delivery or a job: status,
    result, what was pushed, counts per action (total and per config group), drift, and
    error messages (which name files and keys, never values)."""
    body = outcome.body
    out: dict[str, Any] = {"kind": outcome.kind, "status": outcome.status, "result": body.get("status")}
    ev = outcome.events[0] if outcome.events else None
    if ev is not None:
        out.update(delivery_id=ev.delivery_id, ref=ev.ref, after=ev.after)
    results = body.get("results") or []
    summaries = [r["report"].get("summary") or {} for r in results if r.get("report")]
    if summaries:
        out["summary"] = summaries
        totals: dict[str, int] = {}
        for s in summaries:
            for action, n in s.items():
                totals[action] = totals.get(action, 0) + int(n)
        out["totals"] = totals
        out["drift"] = totals.get("drift", 0)
    errors = [str(e.get("message", ""))[:300] for r in results
              for e in [*((r.get("report") or {}).get("errors") or []), *(r.get("errors") or [])]]  # fmt: skip
    if errors:
        out["errors"] = errors[:20]
        out["error_count"] = len(errors)
    for key in ("reason", "note", "mode"):
        if body.get(key):
            out[key] = body[key]
    return out


def counts_by_store(body: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per-store action counts of a sync answer (``"none"`` for errors outside a store):
    what the handlers turn into metrics."""
    counts: dict[str, dict[str, int]] = {}
    for res in body.get("results") or []:
        report = res.get("report") or {}
        for change in report.get("changes") or []:
            by = counts.setdefault(change["store"], {})
            by[change["action"]] = by.get(change["action"], 0) + 1
        for err in report.get("errors") or []:
            by = counts.setdefault(str(err.get("store") or "none"), {})
            by["error"] = by.get("error", 0) + 1
        if res.get("errors"):  # a fetch failure: no store involved
            by = counts.setdefault("none", {})
            by["error"] = by.get("error", 0) + len(res["errors"])
    return counts


def _handle_push(
    event: PushEvent,
    configs: Sequence[Any],
    *,
    store_factory: StoreFactory | None,
    token_resolver: TokenResolver,
    cache_dir: str | None,
    apply: bool,
    fan_out: Callable[..., dict[str, Any] | None] | None = None,
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
            from core.git_fetch import fetch_commit

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
            fanned = fan_out(list(matched), source, changed, event=ev) if fan_out else None
            if fanned is not None:
                results.append({**base, **fanned})
                continue
            report = run(list(matched), source, apply=apply, changed_paths=changed,
                         store_factory=store_factory)  # fmt: skip
        except SyncError as exc:  # the fan-out's planning (a store listing, the run state)
            results.append({**base, "status": "error", "errors": [exc.to_dict()]})
            worst = max(worst, 503)
            continue
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
    fan_out: Callable[..., dict[str, Any] | None] | None = None,
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
            from core.git_fetch import fetch_commit

            source = fetch_commit(group[0].source.url, branch, token=resolve(group[0]),
                                  username=getattr(group[0].source, "username", None),
                                  cache_dir=cache)  # fmt: skip
        except SyncError as exc:
            results.append({"configs": [c.name for c in group], "status": "error",
                            "errors": [exc.to_dict()]})  # fmt: skip
            status = 502
            continue
        try:
            fanned = fan_out(list(group), source, None, drift=drift) if fan_out else None
            if fanned is not None:
                results.append({"configs": [c.name for c in group], "branch": branch, **fanned})
                continue
            report = run(list(group), source, apply=apply, changed_paths=None, drift=drift,
                         store_factory=store_factory)  # fmt: skip
        except SyncError as exc:  # the fan-out's planning (a store listing, the run state)
            results.append({"configs": [c.name for c in group], "status": "error", "errors": [exc.to_dict()]})
            status = 503
            continue
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
    from core.git_fetch import fetch_commit

    username = getattr(getattr(config, "source", None), "username", None)
    return fetch_commit(url, ref, token=token, username=username, cache_dir=cache_dir)
