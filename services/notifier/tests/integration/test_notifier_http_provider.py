"""The HTTP provider against a real (small, local) HTTP server: what it sends, how it reads
answers, and that a refusal or an unreachable API is one message's failure, not a crash."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notifier.adapters.providers import HttpSmsProvider, Submission

SEEN: list[dict[str, Any]] = []


class FakeSmsApi(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append({"path": self.path, "auth": self.headers["Authorization"],
                     "key": self.headers["Idempotency-Key"], **body})
        if body["to"] == "13700000000":
            self._answer(400, {"error": "blacklisted number"})
        elif body["to"] == "13700000001":
            self._answer(200, {"unexpected": True})
        else:
            self._answer(200, {"message_id": f"api-{body['client_ref']}"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sms_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSmsApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SEEN.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_http_provider_submits_and_reads_each_answer(sms_api: str) -> None:
    provider = HttpSmsProvider(sms_api, "secret", timeout_s=5, concurrency=2)
    try:
        outcomes = await provider.submit_many([
            Submission("m-1", "13800000001", "您好,测试。", 1),
            Submission("m-2", "13700000000", "您好", 1),
            Submission("m-3", "13700000001", "您好", 1),
        ])
    finally:
        await provider.aclose()
    assert [(o.client_ref, o.provider_message_id) for o in outcomes] == [
        ("m-1", "api-m-1"), ("m-2", None), ("m-3", None)]
    assert outcomes[1].error == 'HTTP 400: {"error": "blacklisted number"}'
    assert outcomes[2].error is not None and outcomes[2].error.startswith("unreadable answer")
    first = next(s for s in SEEN if s["client_ref"] == "m-1")
    assert first == {"path": "/sms", "auth": "Bearer secret", "key": "m-1",
                     "client_ref": "m-1", "to": "13800000001", "text": "您好,测试。"}


async def test_an_unreachable_api_fails_each_message() -> None:
    provider = HttpSmsProvider("http://127.0.0.1:9", "", timeout_s=2)
    try:
        [outcome] = await provider.submit_many([Submission("m-1", "13800000001", "您好", 1)])
    finally:
        await provider.aclose()
    assert outcome.provider_message_id is None
    assert outcome.error is not None and outcome.error.startswith("ConnectError")
