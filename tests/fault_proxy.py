"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the local AWS API (moto_server).

Point a command at it with ``AWS_ENDPOINT_URL``; per AWS action (``DescribeListeners``,
``ModifyListener``, ...; ``*`` for every action) it can:

* ``delay(seconds)``: answer as moto does, that much later;
* ``deny``: an ``AccessDenied`` error in AWS's query-protocol XML, HTTP 403;
* ``blackhole``: accept the request and never answer (until the proxy stops);
* ``html502``: an HTML "502 Bad Gateway" page, as a broken proxy or load balancer sends.

The action is read as botocore sends it: the ``Action`` field of a query-protocol form body
(EC2, ELBv2, Auto Scaling, CloudWatch query) or the operation after the dot of a JSON
``X-Amz-Target`` header. Every thread the proxy starts is joined when it stops (a blackholed
request is released first), so a test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
    "<Code>AccessDenied</Code><Message>{message}</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)
# The same refusal as a JSON-protocol service (DynamoDB, awsJson1_0) answers it: HTTP 400 and the
# error's shape in ``__type`` (DynamoDB API reference, "Error handling": AccessDeniedException).
DENIED_JSON = '{{"__type": "com.amazon.coral.service#AccessDeniedException", "message": {message}}}'
BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Fault:
    kind: str  # "delay", "deny", "blackhole", "html502"
    seconds: float = 0.0
    message: str = "User is not authorized to perform this operation"


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds)


def deny(message: str = Fault.message) -> Fault:
    return Fault("deny", message=message)


BLACKHOLE = Fault("blackhole")
HTML_502 = Fault("html502")


def action_of(headers: dict[str, str], body: bytes) -> str:
    """The AWS operation a botocore request names (query ``Action`` or JSON target)."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return (form.get("Action") or [""])[0]


class FaultProxy:
    """The proxy's state: the upstream URL, the faults per action, what it has seen."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: dict[str, Fault] = {}
        self.seen: list[str] = []  # actions, in the order they arrived
        self.released = threading.Event()  # set on stop: blackholed requests give up
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = False
        self.server.block_on_close = True  # server_close() joins every request thread
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy")

    def set(self, action: str, fault: Fault | None) -> None:
        """``fault`` for ``action`` (``*``: every action); ``None`` removes it."""
        with self._lock:
            if fault is None:
                self.faults.pop(action, None)
            else:
                self.faults[action] = fault

    def fault_for(self, action: str) -> Fault | None:
        with self._lock:
            self.seen.append(action)
            return self.faults.get(action) or self.faults.get("*")

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self._thread.join()
        # A client in this process (a boto3 client kept alive) holds its keep-alive connection
        # open, and its handler thread waits on it for a next request: end those connections,
        # so that server_close() can join every thread.
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str, body: bytes) -> None:
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body if method != "GET" else None,
                    headers=headers,
                    method=method,
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                        content_type = response.headers.get("Content-Type", "text/xml")
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                    content_type = error.headers.get("Content-Type", "text/xml")
                self._answer(status, payload, content_type)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fault = proxy.fault_for(action_of(headers, body))
                if fault is None:
                    self._forward(method, body)
                elif fault.kind == "delay":
                    if not proxy.released.wait(fault.seconds):
                        self._forward(method, body)
                elif fault.kind == "deny" and "x-amz-target" in headers:
                    text = DENIED_JSON.format(message=json.dumps(fault.message))
                    self._answer(400, text.encode(), "application/x-amz-json-1.0")
                elif fault.kind == "deny":
                    text = DENIED.format(message=fault.message)
                    self._answer(403, text.encode(), "text/xml")
                elif fault.kind == "html502":
                    self._answer(502, BAD_GATEWAY.encode(), "text/html")
                elif fault.kind == "blackhole":
                    proxy.released.wait()  # accepted, never answered
                    self.close_connection = True
                else:
                    raise ValueError(fault.kind)

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

        return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A started proxy in front of ``upstream``; stopped (threads joined) on every way out."""
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
