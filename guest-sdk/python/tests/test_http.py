"""`warden_auth.http` under plain Python: the same calls a plugin makes
inside Warden, sent with urllib to a local server."""

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from warden_auth import http


class _Issuer(BaseHTTPRequestHandler):
    """Answers RFC 7662 introspection for the client `warden`."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"] or 0)).decode()
        expected = "Basic " + base64.b64encode(b"warden:s3cret:x").decode()
        if self.headers["authorization"] != expected:
            return self._answer(401, {"error": "invalid_client"})
        if self.headers["content-type"] != "application/x-www-form-urlencoded":
            return self._answer(400, {"error": "invalid_request"})
        token = urllib.parse.parse_qs(body)["token"][0]
        self._answer(200, {"active": token == "a b&c", "sub": "alice"})

    def do_GET(self):
        self._answer(200, {"path": self.path, "auth": self.headers["authorization"]})

    def _answer(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def issuer():
    server = HTTPServer(("127.0.0.1", 0), _Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_introspection_posts_a_form_with_basic_credentials(issuer):
    answer = http.post(
        f"{issuer}/introspect",
        auth=("warden", "s3cret:x"),
        data={"token": "a b&c", "token_type_hint": "access_token"},
    )
    assert answer.ok and answer.status == 200
    assert answer.header("Content-Type") == "application/json"
    assert answer.json() == {"active": True, "sub": "alice"}
    refused = http.post(f"{issuer}/introspect", auth=("warden", "wrong"), data={"token": "t"})
    assert (refused.status, refused.ok, refused.json()) == (401, False, {"error": "invalid_client"})


def test_a_get_carries_the_bearer_token_and_the_query(issuer):
    answer = http.get(f"{issuer}/userinfo?x=1", bearer="tok")
    assert answer.json() == {"path": "/userinfo?x=1", "auth": "Bearer tok"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: http.get("ftp://example.com/"),
        lambda: http.get("https://user:pw@example.com/"),
        lambda: http.get("https://example.com/", headers={"x-evil": "a\r\nhost: b"}),
        lambda: http.get("https://example.com/", headers={"bad name": "v"}),
        lambda: http.post("https://example.com/", json={}, data={}),
        lambda: http.request("TRACE", "https://example.com/"),
    ],
)
def test_what_cannot_be_sent_is_refused_before_it_leaves(call):
    with pytest.raises(http.InvalidRequest):
        call()


def test_an_unreachable_host_is_an_error_not_a_response():
    with pytest.raises(http.HTTPError):
        http.get("http://127.0.0.1:1/", timeout=5)
