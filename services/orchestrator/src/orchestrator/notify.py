"""Failure and SLA-miss notifications: a Slack-compatible incoming webhook (``{"text": ...}``).

Slack, Mattermost, Rocket.Chat and Teams' Slack-compatible connectors accept this body.
A notification that cannot be delivered is logged, never raised: it must not hide the
failure it reports.
"""

from __future__ import annotations

import logging

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)


@retry(
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.5, max=4),
    retry=retry_if_exception_type(httpx.HTTPError),
    reraise=True,
)
def _post(url: str, text: str) -> None:
    httpx.post(url, json={"text": text}, timeout=10).raise_for_status()


def notify(url: str | None, text: str) -> bool:
    """Post ``text`` to the webhook at ``url``; False when there is none or it failed."""
    if not url:
        return False
    try:
        _post(url, text)
    except httpx.HTTPError as exc:
        log.error("webhook notification failed: %s", exc)
        return False
    return True
