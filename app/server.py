"""The sample service baked into the golden image: /healthz and /version over HTTP.

Standard library only. Configuration comes from the environment: the unit's defaults
(app/service.unit: GF_APP_VERSION, the image's version, GF_APP_PORT 8080, GF_APP_BIND 0.0.0.0),
then /run/<service>/environment, written at boot from the stack's configuration.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "golden-app"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif self.path == "/version":
            self.reply(200, {"version": self.server.app_version})
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def make_server(bind: str, port: int, version: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((bind, port), Handler)
    server.app_version = version
    return server


def main() -> None:
    server = make_server(
        os.environ.get("GF_APP_BIND", "0.0.0.0"),
        int(os.environ.get("GF_APP_PORT", "8080")),
        os.environ.get("GF_APP_VERSION", "unknown"),
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
