"""A local HTTP server on 127.0.0.1 with ``Range`` support, serving generated files.

Shared by the weight-download tests and the ``specxform weights`` CLI tests.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from specxform.weights import WeightFile

PAYLOAD = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()


@dataclass
class Server:
    """What the test server serves and what it was asked."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, list[int]] = field(default_factory=dict)  # per-request byte limits
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def weight(self, name: str, content: bytes | None = None, **kw: object) -> WeightFile:
        """Serve ``content`` at /name and describe it (size and md5 from ``content``)."""
        data = PAYLOAD if content is None else content
        self.files[f"/{name}"] = data
        fields: dict[str, object] = {
            "size": len(data),
            "md5": hashlib.md5(data).hexdigest(),
        }
        fields.update(kw)
        return WeightFile(name=name, filename=name, url=f"{self.base}/{name}", **fields)  # type: ignore[arg-type]


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            limits = state.cut_after.get(self.path)
            # An interrupted transfer: announce the full length, send less, hang up.
            self.wfile.write(body[: limits.pop(0)] if limits else body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(state)
    # A short poll interval makes shutdown() return at once (the default waits 0.5 s).
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
