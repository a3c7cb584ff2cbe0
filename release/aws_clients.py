"""AWS clients for the release command and the refresh command: short timeouts, bounded retries.

A command that talks to AWS must never sit silent for minutes: a blackholed endpoint otherwise
waits botocore's defaults (60 s connect, 60 s read) times its retries. Every client here gives up
on one call in a few seconds and retries a bounded number of times with the ``standard``
retry mode (exponential back-off with jitter, throttling errors retried). Two profiles: the
interactive one (the default) and the refresh command's patient one.

Endpoints come from boto3's own configuration, so the standard ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` variables point every client at a local AWS API (boto3 >= 1.28:
"Service-specific endpoints", boto3 configuration guide).
"""

from __future__ import annotations

import threading
import time
from typing import Any

# Interactive commands (status, deploy, shift, finish, rollback, rollback --now, rollout): an
# operator waits on them, and an emergency rollback must fail over to the printed alternative in
# seconds. A blackholed endpoint costs one call at most READ x ATTEMPTS plus one back-off (about
# 5 s), so `rollback --now` stays under 10 s and `status`/`shift` (a few such reads, each giving
# up on its own) under 15 s.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 2
MAX_ATTEMPTS = 2  # the first call and one retry

# The program's refresh command (release/refresh.py) polls a refresh for up to an hour inside
# `pulumi up`: a slow answer there is worth waiting for, so it keeps longer settings.
PATIENT_CONNECT_TIMEOUT_S = 3
PATIENT_READ_TIMEOUT_S = 10
PATIENT_MAX_ATTEMPTS = 3


def client_config(patient: bool = False) -> Any:
    from botocore.config import Config

    if patient:
        connect, read, attempts = (
            PATIENT_CONNECT_TIMEOUT_S,
            PATIENT_READ_TIMEOUT_S,
            PATIENT_MAX_ATTEMPTS,
        )
    else:
        connect, read, attempts = CONNECT_TIMEOUT_S, READ_TIMEOUT_S, MAX_ATTEMPTS
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "max_attempts": attempts},
    )


def session(region: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def has_credentials(region: str, made_by: Any = None) -> bool:
    """False when the default credential chain finds nothing (no call is made). ``made_by``: a
    session of ``region`` already made."""
    return (made_by or session(region)).get_credentials() is not None


# An endpoint that did not answer within the timeouts and retries is not asked again for a
# while: `status` reads images, groups and alarms, and paying the full timeout once per read
# would add up past what an operator waits for. Per process, per endpoint URL.
UNREACHABLE_FOR_S = 20.0
_unreachable: dict[str, tuple[float, str]] = {}  # endpoint URL -> (until, what happened)
_unreachable_lock = threading.Lock()


def _network_failure(exception: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return isinstance(exception, ReadTimeoutError | ConnectTimeoutError | BotoConnectionError)


def _remember(endpoint: str) -> Any:
    def after_error(exception: BaseException | None = None, **_: Any) -> None:
        if exception is not None and _network_failure(exception):
            with _unreachable_lock:
                _unreachable[endpoint] = (time.monotonic() + UNREACHABLE_FOR_S, str(exception))

    return after_error


# Only reads are skipped. A write is the step an operator or a rollout is waiting for (the
# rollback's ModifyListener, the lock's tags): it is always tried, with its own timeouts.
_READS = ("Describe", "Get", "List")


def _refuse_unreachable(endpoint: str) -> Any:
    def before_call(model: Any = None, **_: Any) -> None:
        from botocore.exceptions import EndpointConnectionError

        if model is not None and not model.name.startswith(_READS):
            return
        with _unreachable_lock:
            until, what = _unreachable.get(endpoint, (0.0, ""))
        if time.monotonic() < until:
            raise EndpointConnectionError(
                endpoint_url=f"{endpoint} (did not answer just now: {what})"
            )

    return before_call


def client(service: str, region: str, patient: bool = False, made_by: Any = None) -> Any:
    """A boto3 client for ``service`` in ``region`` with the timeouts and retries above
    (``patient``: the refresh command's). An interactive client does not send a read to an
    endpoint that timed out in the last ``UNREACHABLE_FOR_S`` seconds: it fails at once; writes
    are always sent. ``made_by``: a session of ``region`` already made (one session loads the
    SDK's data files once)."""
    made = (made_by or session(region)).client(service, config=client_config(patient))
    if not patient:
        endpoint = made.meta.endpoint_url
        made.meta.events.register("after-call-error", _remember(endpoint))
        made.meta.events.register("before-call", _refuse_unreachable(endpoint))
    return made
