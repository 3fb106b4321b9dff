"""A webhook receiver for the tests: a small HTTP server on 127.0.0.1 in a thread that keeps
every request and answers as it is told (a status per request, then 200); and `drain`, the
relay run in the test until nothing is due. The fixtures `receiver` and `fast_retries` are
in tests/conftest.py (the API's tests and the browser's use them)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

from notifications import delivery


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    # Statuses to answer, in turn; once empty, 200. `answer(request)` decides instead: a
    # status, or (status, seconds to wait before answering).
    statuses: list[int] = field(default_factory=list)
    answer: object = None
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks?source=test"

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def verified(self, secret: str) -> list[dict]:
        """Each body, verified with the standardwebhooks library (raises if one is not)."""
        return [Webhook(secret).verify(r.body, r.headers) for r in self.received]


def start_receiver() -> Receiver:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            request = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
            with lock:
                receiver.received.append(request)
                if receiver.answer is not None:
                    status = receiver.answer(request)
                else:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
            status, delay = status if isinstance(status, tuple) else (status, receiver.delay)
            if delay:
                time.sleep(delay)
            answer = b'{"ok": true}' if status < 300 else b"Internal trouble, try later"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender died waiting (a SIGKILLed worker)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def drain(limit: int = 100) -> None:
    """The relay's code until nothing is due (tasks run here: eager_tasks)."""
    for _ in range(limit):
        if not delivery.relay_due():
            return
    raise AssertionError("deliveries kept coming")
