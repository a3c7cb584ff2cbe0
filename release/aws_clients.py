"""AWS clients for the release command and the refresh command: short timeouts, bounded retries.

A command that talks to AWS must never sit silent for minutes: a blackholed endpoint otherwise
waits botocore's defaults (60 s connect, 60 s read) times its retries. Every client here gives up
on one call in a few seconds and retries a bounded number of times with the ``standard``
retry mode (exponential back-off with jitter, throttling errors retried).

Endpoints come from boto3's own configuration, so the standard ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` variables point every client at a local AWS API (boto3 >= 1.28:
"Service-specific endpoints", boto3 configuration guide).
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 3  # the first call and two retries


def client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )


def session(region: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def has_credentials(region: str) -> bool:
    """False when the default credential chain finds nothing (no call is made)."""
    return session(region).get_credentials() is not None


def client(service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region`` with the timeouts and retries above."""
    return session(region).client(service, config=client_config())
