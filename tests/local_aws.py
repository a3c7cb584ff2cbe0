"""A local AWS API server (moto) on a free loopback port, for tests that need a real endpoint
(subprocesses, AWS_ENDPOINT_URL) rather than moto's in-process mock."""

from __future__ import annotations

import contextlib
import socket
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
