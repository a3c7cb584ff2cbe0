"""A local AWS API server (moto) on a free loopback port, for tests that need a real endpoint
(subprocesses, AWS_ENDPOINT_URL) rather than moto's in-process mock."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from moto.server import ThreadedMotoServer


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Yields the server's URL; the server is stopped on every way out."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def use_test_credentials(
    monkeypatch, endpoint: str | None = None, account: str | None = None
) -> None:
    """This test's AWS clients get test credentials only (nothing of the caller's AWS_* settings,
    files or profiles); with ``endpoint``, they talk to that local server, whose state is reset;
    with ``account``, moto answers as that account."""
    import os
    import urllib.request

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    if account is not None:
        monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
    if endpoint is not None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=5).close()


@contextlib.contextmanager
def atomic_dynamodb_items() -> Iterator[None]:
    """DynamoDB applies each item operation, its condition included, atomically (Developer
    Guide, "Condition expressions": a conditional write succeeds only if the condition holds at
    the moment of the write). moto checks the condition and then writes without a lock
    (moto/dynamodb/models/__init__.py, ``update_item``/``put_item``/``delete_item``), so two
    threads of moto_server could both pass one ``attribute_not_exists``: item operations run one
    at a time while this is active, as DynamoDB's do on one item."""
    from moto.dynamodb.models import DynamoDBBackend

    one_at_a_time = threading.Lock()
    names = ("get_item", "put_item", "update_item", "delete_item")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}

    def serialized(original):
        def call(self, *args, **kwargs):
            with one_at_a_time:
                return original(self, *args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialized(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
