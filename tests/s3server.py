"""A real S3 server for tests (moto's, on loopback) and a proxy in front of it that
makes chosen PUTs fail or hang, as a throttled or stalled object store would."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def moto_server():
    """Yield the port of a fresh moto S3 server."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(port: int) -> str:
    """The URI query that points pyarrow (and ray_ocr) at the server."""
    return f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"


def filesystem(port: int):
    import pyarrow.fs

    return pyarrow.fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                                   access_key="testing", secret_key="testing", allow_bucket_creation=True)


class FaultyProxy(ThreadingHTTPServer):
    """Forwards every request to the S3 server at `upstream`, except that a PUT (or a
    request of another of `methods`) whose path contains a key of `fail` gets a 503
    SlowDown that many times (-1: always), and one whose path contains `hold` waits
    until `release` is set (`held` is set when it arrives) and is dropped if its client
    died meanwhile."""

    daemon_threads = True

    def __init__(self, upstream: int, fail: dict[str, int] | None = None, hold: str | None = None,
                 methods: tuple[str, ...] = ("PUT",)):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.methods = methods
        self.fail = dict(fail or {})
        self.hold = hold
        self.held, self.release = threading.Event(), threading.Event()
        self.puts: list[tuple[str, int]] = []  # (path, status) of every PUT answered
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def _failing(self, path: str) -> bool:
        with self.lock:
            for part, left in self.fail.items():
                if part in path and left != 0:
                    self.fail[part] = left - 1 if left > 0 else -1
                    return True
        return False

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _client_gone(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _forward(self):
        proxy: FaultyProxy = self.server
        body = self._body()
        if self.command == "PUT" and proxy.hold and proxy.hold in self.path:
            proxy.held.set()
            proxy.release.wait(120)
            if self._client_gone():
                return  # the writer died mid-request: like a cut connection, nothing is stored
        if self.command in proxy.methods and proxy._failing(self.path):
            reply = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has no body
                self.wfile.write(reply)
            if self.command == "PUT":
                proxy.puts.append((self.path, 503))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if self.command == "PUT":
            proxy.puts.append((self.path, answer.status))
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward
