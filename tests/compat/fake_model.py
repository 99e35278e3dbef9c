"""A small OpenAI-compatible model server on 127.0.0.1 for the assistant tests.

``POST /v1/chat/completions`` answers with the next scripted answer, streamed as
server-sent events chunk by chunk the way OpenAI's API does (content deltas, tool-call
fragments, a usage chunk, ``data: [DONE]``). An answer can be held after its first token
until the test releases it (``hold_next()`` returns the ``threading.Event`` to set), so a
test can see a token arrive while the run is still going. Every request body is recorded.
It runs on a thread of the test process.
"""
from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


def tokens(*parts: str) -> dict:
    """An answer of these tokens, one chunk each."""
    return {"tokens": list(parts)}


def hang() -> dict:
    """An answer that sends one token, then nothing more while the test lasts."""
    return {"hang": True}


def tool_call(name: str, args: dict, call_id: str) -> dict:
    """An answer that calls tool ``name`` with ``args`` (split over two chunks)."""
    return {"tool_call": {"name": name, "args": args, "id": call_id}}


def _chunk(model: str, delta: dict, finish: Optional[str] = None) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000,
        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _chunks(model: str, answer: dict) -> list[dict]:
    out = [_chunk(model, {"role": "assistant", "content": ""})]
    if answer.get("hang"):
        return out + [_chunk(model, {"content": "Thinking"})]
    if "tokens" in answer:
        out += [_chunk(model, {"content": t}) for t in answer["tokens"]]
        out.append(_chunk(model, {}, "stop"))
    else:
        call = answer["tool_call"]
        args = json.dumps(call["args"])
        half = len(args) // 2
        out.append(_chunk(model, {"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                  "function": {"name": call["name"],
                                                               "arguments": args[:half]}}]}))
        out.append(_chunk(model, {"tool_calls": [{"index": 0,
                                                  "function": {"arguments": args[half:]}}]}))
        out.append(_chunk(model, {}, "tool_calls"))
    out.append({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000,
                "model": model, "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
    return out


class FakeModel:
    """The server; ``start()`` it, ``answer(...)`` what it says next, ``stop()`` it."""

    def __init__(self) -> None:
        self.answers: deque[dict] = deque()
        self.requests: list[dict[str, Any]] = []
        self._hold: Optional[threading.Event] = None
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._stopped = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, answer: dict) -> None:
        with self._lock:
            self.answers.append(answer)

    def hold_next(self) -> threading.Event:
        gate = threading.Event()
        with self._lock:
            self._hold = gate
        return gate

    def start(self) -> "FakeModel":
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with model._lock:
                    model.requests.append(body)
                    answer = model.answers.popleft() if model.answers else None
                    hold, model._hold = model._hold, None
                if answer is None:
                    error = json.dumps({"error": {"message": "no answer scripted"}}).encode()
                    self.send_response(500)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for i, chunk in enumerate(_chunks(body.get("model", "?"), answer)):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if i == 1 and hold is not None:
                        hold.wait(timeout=600)
                if answer.get("hang"):
                    model._stopped.wait()
                    return
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
