"""Outbound HTTP from a plugin: token introspection, userinfo, a JWKS.

Inside Warden a request goes through `wasi:http`, and only to a host in
the plugin's `auth.allowed_hosts` (none by default); any other raises
`Denied`. Each request has its own timeout, cut to what is left of the
call's deadline, and a response-size cap; the whole body is read before
`request` returns. Under plain Python (native tests) the same calls use
`urllib.request`, with no allow-list.

    from warden_auth import http

    answer = http.post(
        "https://idp.example.com/oauth2/introspect",
        auth=("warden", host.secret("CLIENT_SECRET")),
        data={"token": token, "token_type_hint": "access_token"},
    )
    if answer.ok and answer.json().get("active"):
        ...
"""

from __future__ import annotations

import base64
import json as _json
import re
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

try:  # inside the component
    from componentize_py_types import Err as _Err

    IN_COMPONENT = True
except ImportError:  # plain Python
    IN_COMPONENT = False

_BINDINGS = False
if IN_COMPONENT:
    try:  # `warden build` asks componentize-py for them (world `auth-plugin-python`)
        from wit_world.imports import outgoing_handler as _handler
        from wit_world.imports import streams as _streams
        from wit_world.imports import wasi_http_types as _wasi

        _BINDINGS = True
    except ImportError:  # built by an older `warden build`
        pass

__all__ = [
    "Denied",
    "HTTPError",
    "InvalidRequest",
    "Response",
    "Timeout",
    "TooLarge",
    "delete",
    "get",
    "post",
    "put",
    "request",
]

Headers = Union[Mapping[str, str], Sequence[Tuple[str, str]]]


class HTTPError(Exception):
    """A request that got no response (not an HTTP error status: those are
    a `Response` whose `ok` is false)."""


class InvalidRequest(HTTPError):
    """The URL, a header or the body cannot be sent."""


class Denied(HTTPError):
    """The host is not in `auth.allowed_hosts`."""

    def __init__(self) -> None:
        super().__init__("the host is not in auth.allowed_hosts")


class Timeout(HTTPError):
    """No response within the request's timeout (or the call's deadline)."""

    def __init__(self) -> None:
        super().__init__("timed out")


class TooLarge(HTTPError):
    """The response body is larger than the host's cap."""

    def __init__(self) -> None:
        super().__init__("the response is too large")


class Response:
    """A response: `status`, `headers` (lowercased names, in order) and the
    whole `body`."""

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        """The first value of the header `name` (any case)."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def json(self) -> Any:
        """The body as JSON."""
        return _json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status}, {len(self.body)} bytes>"


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def request(
    method: str,
    url: str,
    *,
    headers: Optional[Headers] = None,
    body: Optional[bytes] = None,
    json: Any = None,
    data: Optional[Union[Mapping[str, str], Sequence[Tuple[str, str]]]] = None,
    auth: Optional[Tuple[str, str]] = None,
    bearer: Optional[str] = None,
    timeout: Optional[float] = None,
) -> Response:
    """Sends a request and reads the whole response.

    `json` sends a value as JSON, `data` a form
    (`application/x-www-form-urlencoded`), `body` raw bytes (give its
    `content-type` in `headers`); `auth=(user, password)` sets HTTP Basic
    credentials, `bearer` a Bearer token; `timeout` (seconds) bounds the
    connection, the first byte and each next part of the response, within
    the host's own limits."""
    method = method.upper()
    if method not in _METHODS:
        raise InvalidRequest(f"unsupported method {method!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc or parts.fragment:
        raise InvalidRequest(f"invalid URL {url!r}")
    fields: List[Tuple[str, str]] = []
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    for name, value in items:
        _add(fields, name, value)
    if sum(x is not None for x in (body, json, data)) > 1:
        raise InvalidRequest("give at most one of body, json and data")
    content: bytes = b""
    if json is not None:
        content = _json.dumps(json, separators=(",", ":")).encode()
        _set(fields, "content-type", "application/json")
    elif data is not None:
        content = urllib.parse.urlencode(list(data.items()) if isinstance(data, Mapping) else list(data)).encode()
        _set(fields, "content-type", "application/x-www-form-urlencoded")
    elif body is not None:
        content = bytes(body)
    if auth is not None:
        user, password = auth
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        _set(fields, "authorization", f"Basic {credentials}")
    if bearer is not None:
        _set(fields, "authorization", f"Bearer {bearer}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if IN_COMPONENT:
        if not _BINDINGS:
            raise HTTPError("this plugin was built without wasi:http bindings: rebuild it with `warden build`")
        return _send_wasi(method, parts.scheme, parts.netloc, path, fields, content, timeout)
    return _send_native(method, url, fields, content, timeout)


def get(url: str, **kwargs: Any) -> Response:
    """`request("GET", url, ...)`."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """`request("POST", url, ...)`."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    """`request("PUT", url, ...)`."""
    return request("PUT", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """`request("DELETE", url, ...)`."""
    return request("DELETE", url, **kwargs)


def _add(fields: List[Tuple[str, str]], name: str, value: str) -> None:
    if not _TOKEN.match(name) or any(c in value for c in "\r\n\0") or any(
        ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value
    ):
        raise InvalidRequest(f"the header {name!r} cannot be sent")
    fields.append((name.lower(), value))


def _set(fields: List[Tuple[str, str]], name: str, value: str) -> None:
    fields[:] = [(n, v) for n, v in fields if n != name]
    _add(fields, name, value)


def _send_native(
    method: str, url: str, fields: List[Tuple[str, str]], content: bytes, timeout: Optional[float]
) -> Response:
    import socket
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=content or None, method=method)
    for name, value in fields:
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            status, headers, body = answer.status, answer.getheaders(), answer.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers.items(), e.read()
    except (socket.timeout, TimeoutError) as e:
        raise Timeout() from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise Timeout() from e
        raise HTTPError(str(e.reason)) from e
    return Response(status, [(n.lower(), v) for n, v in headers], body)


def _error(code: Any) -> HTTPError:
    if isinstance(code, _wasi.ErrorCode_HttpRequestDenied):
        return Denied()
    if isinstance(
        code,
        (
            _wasi.ErrorCode_ConnectionTimeout,
            _wasi.ErrorCode_ConnectionReadTimeout,
            _wasi.ErrorCode_HttpResponseTimeout,
        ),
    ):
        return Timeout()
    if isinstance(code, _wasi.ErrorCode_HttpResponseBodySize):
        return TooLarge()
    return HTTPError(type(code).__name__.removeprefix("ErrorCode_"))


def _send_wasi(
    method: str,
    scheme: str,
    authority: str,
    path: str,
    fields: List[Tuple[str, str]],
    content: bytes,
    timeout: Optional[float],
) -> Response:
    headers = _wasi.Fields()
    for name, value in fields:
        try:
            headers.append(name, value.encode())
        except _Err as e:
            raise InvalidRequest(f"the header {name!r} cannot be sent") from e
    outgoing = _wasi.OutgoingRequest(headers)
    method_value = getattr(_wasi, f"Method_{method.capitalize()}")()
    try:
        outgoing.set_method(method_value)
        outgoing.set_scheme(_wasi.Scheme_Https() if scheme == "https" else _wasi.Scheme_Http())
        outgoing.set_authority(authority)
        outgoing.set_path_with_query(path)
    except _Err as e:
        raise InvalidRequest(f"invalid URL {scheme}://{authority}{path}") from e
    options = None
    if timeout is not None:
        nanos = max(0, int(timeout * 1e9))
        options = _wasi.RequestOptions()
        for setter in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
            try:
                setter(nanos)
            except _Err:
                pass  # the host keeps its own
    body = outgoing.body()
    try:
        pending = _handler.handle(outgoing, options)
    except _Err as e:
        raise _error(e.value) from None
    stream = body.write()
    try:
        for start in range(0, len(content), 4096):
            stream.blocking_write_and_flush(content[start : start + 4096])
    except _Err as e:
        raise HTTPError("the request body could not be sent") from e
    finally:
        stream.__exit__(None, None, None)
    try:
        _wasi.OutgoingBody.finish(body, None)
    except _Err as e:
        raise _error(e.value) from None
    while True:
        outcome = pending.get()
        if outcome is None:
            with pending.subscribe() as ready:
                ready.block()
            continue
        break
    # Ok(Ok(response)), Ok(Err(error-code)), or Err(None) once taken.
    if isinstance(outcome, _Err):
        raise HTTPError("the response was already taken")
    if isinstance(outcome.value, _Err):
        raise _error(outcome.value.value)
    response = outcome.value.value
    status = response.status()
    with response.headers() as received:
        response_headers = [(n.lower(), v.decode("utf-8", "replace")) for n, v in received.entries()]
    incoming = response.consume()
    chunks: List[bytes] = []
    with incoming.stream() as reader:
        while True:
            try:
                chunks.append(reader.blocking_read(64 * 1024))
            except _Err as e:
                if isinstance(e.value, _streams.StreamError_Closed):
                    break
                raise HTTPError("the response body could not be read") from e
    return Response(status, response_headers, b"".join(chunks))
