"""What every cloud handler does around `core.intake`, once: read the environment (secret
bundle, configs, webhook secret) and turn a configuration problem into the one answer all
clouds give. The handlers keep only transport (their event in, their response, logs and
metrics out), so a rule changed here changes on every cloud alike.

- `environment(default_path, read_secret=...)`: ``SMF_ENV_SECRET``'s bundle (read once per
  instance, where the platform has one: AWS), every secret variable checked for an unresolved
  reference, the configs (`core.settings.load_configs`, cached per text) and the webhook
  secret (`core.intake.webhook_secret`).
- `deliver(...)`: a webhook delivery. A configuration that does not load, or a queue setting
  that is invalid, is ``500 {"status": "error", "reason": "configuration error"}`` (kind
  ``rejected``); the cause goes to the ``smf.intake`` log, by name (never a value).
- `run_message(...)`: a queued message or the schedule's resync.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core import intake, settings

log = logging.getLogger("smf.intake")
CONFIG_ERROR = {"status": "error", "reason": "configuration error"}


def environment(
    default_path: Path | str, *, read_secret: Callable[[str], str] | None = None
) -> tuple[list[Any], str | None]:
    """The configs and the webhook secret a delivery or a job runs with."""
    if read_secret is not None:
        settings.load_secret_bundle_once(
            os.environ.get("SMF_ENV_SECRET"), read_secret, origin="SMF_ENV_SECRET"
        )
    settings.check_env_secrets()
    configs = settings.load_configs(default_path=default_path)
    return configs, intake.webhook_secret(configs)


def deliver(
    headers: Mapping[str, str],
    body: bytes,
    *,
    default_path: Path | str,
    max_message_bytes: int,
    send: intake.Send | None = None,
    default_mode: str = "auto",
    read_secret: Callable[[str], str] | None = None,
) -> intake.Outcome:
    """One webhook delivery (`intake.handle_delivery`); without `send` nothing is queued."""
    try:
        configs, secret = environment(default_path, read_secret=read_secret)
        policy = intake.QueuePolicy.from_env(max_message_bytes, default_mode=default_mode) if send else None
    except Exception as exc:  # noqa: BLE001 - a configuration problem: named, 500
        log.error("configuration error", extra={"error": str(exc), "error_type": type(exc).__name__})
        return intake.Outcome(500, dict(CONFIG_ERROR), "rejected")
    return intake.handle_delivery(headers, body, configs, secret=secret, queue=policy, send=send)


def run_message(
    message: str | bytes | Mapping[str, Any],
    *,
    default_path: Path | str,
    read_secret: Callable[[str], str] | None = None,
    context: intake.RunContext | None = None,
) -> intake.Outcome:
    """A queued message (already verified at the webhook) or ``{"kind": "resync"}``. A
    configuration problem raises: the platform retries the message, then dead-letters it.
    `context` carries the platform's `enqueue`, so a large run can fan out (core/fanout.py)."""
    configs, secret = environment(default_path, read_secret=read_secret)
    return intake.handle_message(message, configs, secret=secret, context=context)
