"""The Service's router as its clients see it: a real router process on loopback in front of real
(stdlib) HTTP backends, spoken to over raw sockets where a client library would hide what matters
(pipelining, a malformed request, a chunked body)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("httptools")

from mlspec_serve.router import ADMIN, write_routes
from mlspec_serve.supervise import free_port

from mlspec.sdk import processes


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "a"
    delay_s = 0.0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(self.delay_s)
        self._answer(200, {"backend": self.name, "echo": body.decode(), "path": self.path})

    def do_GET(self) -> None:
        self._answer(200 if self.path != "/boom" else 500, {"backend": self.name, "path": self.path})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "1234")
        self.end_headers()

    def _answer(self, status: int, data: dict[str, str]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the router gave up on a slow answer
            self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[Callable[..., str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(name: str, delay_s: float = 0.0) -> str:
        handler = type(f"Backend{name}", (Backend,), {"name": name, "delay_s": delay_s})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Callable[..., tuple[int, Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(backends: list[dict[str, object]], timeout_s: float = 60.0) -> tuple[int, Path]:
        port = free_port("127.0.0.1")
        routes = tmp_path / f"routes-{port}.json"
        write_routes(routes, "127.0.0.1", port, backends, timeout_s=timeout_s)
        started.append(subprocess.Popen([sys.executable, "-m", "mlspec_serve.router", str(routes)]))
        deadline = time.monotonic() + 15
        while not processes.answers(f"http://127.0.0.1:{port}{ADMIN}"):
            assert time.monotonic() < deadline, "the router did not start"
            time.sleep(0.05)
        return port, routes

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


def exchange(port: int, raw: bytes, answers: int = 1) -> list[tuple[int, dict[str, str]]]:
    """Send raw bytes on one connection; read `answers` responses off it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        reader = sock.makefile("rb")
        found = []
        for _ in range(answers):
            status = int(reader.readline().split()[1])
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                key, value = line.decode().split(":", 1)
                headers[key.strip().lower()] = value.strip()
            found.append((status, json.loads(reader.read(int(headers["content-length"])))))
        return found


def test_pipelined_requests_on_one_connection_are_answered_in_order(backend: Callable[..., str],
                                                                     router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    raw = b"".join(f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n{i}".encode() for i in range(5))
    answers = exchange(port, raw, answers=5)
    assert [body["echo"] for _, body in answers] == ["0", "1", "2", "3", "4"]


def test_a_chunked_body_reaches_the_backend_whole(backend: Callable[..., str],
                                                  router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    raw = (b"POST /predict?x=1 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    [(status, body)] = exchange(port, raw)
    assert status == 200 and body == {"backend": "a", "echo": "hello world", "path": "/predict?x=1"}


def test_a_malformed_request_is_a_400_and_the_router_serves_on(backend: Callable[..., str],
                                                               router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    [(status, body)] = exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and "bad request" in body["error"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/livez")
    assert connection.getresponse().status == 200


def test_head_answers_headers_only(backend: Callable[..., str], router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("HEAD", "/readyz")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.read() == b""
    connection.request("GET", "/livez")  # the same connection is still in step
    assert json.loads(connection.getresponse().read())["path"] == "/livez"


def test_a_backend_that_refuses_sends_its_requests_to_another_and_is_counted(
        backend: Callable[..., str], router: Callable[..., tuple[int, Path]]) -> None:
    gone = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    port, _ = router([{"url": gone, "weight": 0.99}, {"url": backend("b"), "weight": 0.01}])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(10):
        connection.request("POST", "/predict", body=b"{}")
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["backend"] == "b"
    connection.request("GET", ADMIN)
    stats = json.loads(connection.getresponse().read())["stats"]
    assert stats[gone]["failures"] >= 5 and stats[gone]["failures"] == stats[gone]["requests"]


def test_weights_change_without_a_restart_and_5xx_counts_as_a_failure(
        backend: Callable[..., str], router: Callable[..., tuple[int, Path]]) -> None:
    a, b = backend("a"), backend("b")
    port, routes = router([{"url": a, "weight": 1.0}])
    write_routes(routes, "127.0.0.1", port, [{"url": a, "weight": 0.0}, {"url": b, "weight": 1.0}])
    time.sleep(0.5)  # the router re-reads its routes within 0.2 s
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(5):
        connection.request("GET", "/boom")
        answer = connection.getresponse()
        assert answer.status == 500 and json.loads(answer.read())["backend"] == "b"
    connection.request("GET", ADMIN)
    stats = json.loads(connection.getresponse().read())["stats"]
    assert stats[b] == {"requests": 5, "failures": 5, "p99_ms": stats[b]["p99_ms"]}


def test_a_backend_slower_than_the_timeout_is_a_504_sent_once(backend: Callable[..., str],
                                                               router: Callable[..., tuple[int, Path]]) -> None:
    slow, other = backend("slow", delay_s=2.0), backend("other")
    port, _ = router([{"url": slow, "weight": 0.999999}, {"url": other, "weight": 0.000001}], timeout_s=0.5)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/predict", body=b"{}")
    answer = connection.getresponse()
    assert answer.status == 504 and "did not answer within 0.5 s" in json.loads(answer.read())["error"]


def test_expect_100_continue_gets_its_own_answer_and_no_one_elses(backend: Callable[..., str],
                                                                   router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    raw = b"POST /first HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 6\r\n\r\nsecret"
    [(status, body)] = exchange(port, raw)
    assert (status, body["path"], body["echo"]) == (200, "/first", "secret")
    [(status, body)] = exchange(port, b"GET /second HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (status, body["path"]) == (200, "/second")


def test_head_keeps_the_backends_content_length(backend: Callable[..., str],
                                                router: Callable[..., tuple[int, Path]]) -> None:
    port, _ = router([{"url": backend("a"), "weight": 1.0}])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("HEAD", "/readyz")
    answer = connection.getresponse()
    assert answer.getheader("content-length") == "1234" and answer.read() == b""


def test_sigterm_with_idle_clients_stops_quietly(backend: Callable[..., str], tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    routes = tmp_path / "routes.json"
    write_routes(routes, "127.0.0.1", port, [{"url": backend("a"), "weight": 1.0}])
    process = subprocess.Popen([sys.executable, "-m", "mlspec_serve.router", str(routes)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while not processes.answers(f"http://127.0.0.1:{port}{ADMIN}"):
            assert time.monotonic() < deadline, "the router did not start"
            time.sleep(0.05)
        idle = socket.create_connection(("127.0.0.1", port))  # kept alive, never sends a thing
        process.terminate()
        said, _ = process.communicate(timeout=15)
        idle.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in said and "CancelledError" not in said, said
