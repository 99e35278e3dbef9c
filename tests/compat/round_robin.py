"""A round-robin HTTP/1.1 proxy for the compatibility suite's replicas mode.

Each successive HTTP *request* (not connection: the SDK keeps its connections alive) goes
to the next upstream, whatever connection it came on, so a flow of several requests (create
a run, join it, cancel it...) spans the replicas. Responses are streamed as they arrive
(SSE: each chunk is forwarded and flushed at once), with their status, headers and bytes
unchanged (no decompression); only hop-by-hop headers are dropped, and a response of no
declared length is re-chunked. A client that disconnects mid-response closes the upstream
response, so the server sees the disconnect (cancel-on-disconnect keeps working).

The proxy runs on a background thread with its own event loop, so the pytest process's
own event loops (one per test) can reach it:

    proxy = RoundRobinProxy(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]).start()
    ... proxy.url ...
    proxy.stop()
    proxy.counts  # requests sent to each upstream, in order

Client side: asyncio streams parsed with `h11`; upstream side: `httpx.AsyncClient`.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import threading
from typing import Optional

import h11
import httpx

RESERVED_PORTS = {2024}  # belongs to the machine's infrastructure: never use it

# Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded: each side frames its own message.
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
}
READ_SIZE = 65536


class _ClientGone(Exception):
    """The client closed its connection (or broke it) before the response was sent."""


class RoundRobinProxy:
    def __init__(self, upstreams: list[str], *, host: str = "127.0.0.1", log_size: int = 20000):
        if not upstreams:
            raise ValueError("at least one upstream")
        self.upstreams = [u.rstrip("/") for u in upstreams]
        self.host = host
        self.port = 0
        self.counts = [0] * len(self.upstreams)
        # One line per request (time, replica, method, target, outcome), each under the
        # label current when it came (the harness sets the test's id): for reports.
        self.label = ""
        self.log: collections.deque[tuple[str, str]] = collections.deque(maxlen=log_size)
        self.errors: list[str] = []
        self._next = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._http: Optional[httpx.AsyncClient] = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.counts)

    def requests_of(self, label: str) -> list[str]:
        """The log lines of the requests that came under `label`."""
        return [line for at, line in list(self.log) if at == label]

    def _note(self, line: str) -> None:
        self.log.append((self.label, line))

    # -----------------------------------------------------------------------------------
    # Life cycle (called from the pytest thread)

    def start(self) -> "RoundRobinProxy":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="round-robin-proxy", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)
            if not loop.is_running():
                loop.close()

    async def _open(self) -> None:
        # No timeout on reads: a streamed body (SSE, a long `runs.wait`) has no bound; the
        # client's own timeouts apply on its side. Never a proxy from the environment.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10.0, read=None, write=60.0, pool=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            trust_env=False,
            follow_redirects=False,
        )
        # httpx would add its own defaults to requests that lack them (notably
        # Accept-Encoding, which would make the server compress what the client did not
        # ask to be compressed): the client's headers go through as they are.
        for name in ("accept", "accept-encoding", "user-agent"):
            del self._http.headers[name]
        for _ in range(20):
            server = await asyncio.start_server(self._accept, self.host, 0)
            port = server.sockets[0].getsockname()[1]
            if port not in RESERVED_PORTS:
                self._server, self.port = server, port
                return
            server.close()
            await server.wait_closed()
        raise RuntimeError("no free port for the round-robin proxy")

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        if self._http is not None:
            await self._http.aclose()

    # -----------------------------------------------------------------------------------
    # One client connection: requests one after the other (keep-alive)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (asyncio.CancelledError, _ClientGone, ConnectionError):
            pass
        except Exception as exc:  # a proxy bug: keep it for the report
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_connection(self, reader, writer) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                request = await self._next_event(conn, reader)
                if not isinstance(request, h11.Request):
                    return  # ConnectionClosed (or a stray event): the client is done
                body = bytearray()
                while True:
                    event = await self._next_event(conn, reader)
                    if isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        raise _ClientGone()
            except h11.RemoteProtocolError as exc:
                await self._send_error(conn, writer, 400, f"bad request: {exc}")
                return

            # The response goes out while the connection is watched for a disconnect.
            exchange = asyncio.create_task(self._exchange(conn, writer, request, bytes(body)))
            watcher = asyncio.create_task(self._watch(conn, reader))
            try:
                await asyncio.wait({exchange, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not exchange.done():
                    exchange.cancel()  # the client left: close the upstream response
                watcher.cancel()
                await asyncio.gather(exchange, watcher, return_exceptions=True)
            if exchange.cancelled():
                return
            failure = exchange.exception()
            if failure is not None:
                if not isinstance(failure, (_ClientGone, ConnectionError)):
                    self.errors.append(f"{type(failure).__name__}: {failure}")
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    @staticmethod
    async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(READ_SIZE)
                conn.receive_data(data)  # b"" tells h11 the client closed
                continue
            return event

    @staticmethod
    async def _watch(conn: h11.Connection, reader: asyncio.StreamReader) -> None:
        """Return once the client closes its connection. What it sends meanwhile (a
        pipelined request) is kept for h11, which parses it after this response."""
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            conn.receive_data(data)

    # -----------------------------------------------------------------------------------
    # One request: to the next upstream, its response streamed back

    def _pick(self) -> int:
        index = self._next
        self._next = (self._next + 1) % len(self.upstreams)
        self.counts[index] += 1
        return index

    async def _exchange(self, conn, writer, request: h11.Request, body: bytes) -> None:
        index = self._pick()
        method = request.method.decode("ascii")
        target = request.target.decode("latin-1")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        note = f"{now}Z -> replica #{index + 1} {method} {target}"
        headers = [
            (name, value)
            for name, value in request.headers
            if name.lower() not in HOP_BY_HOP | {b"host", b"content-length"}
        ]
        upstream_request = self._http.build_request(
            method,
            self.upstreams[index] + target,
            headers=headers,
            content=body if body or method not in ("GET", "HEAD", "DELETE") else None,
        )
        try:
            response = await self._http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            self._note(f"{note}: upstream error {type(exc).__name__}: {exc}")
            await self._send_error(conn, writer, 502, f"upstream #{index + 1}: {exc!r}")
            return
        self._note(f"{note}: {response.status_code}")
        try:
            # Keep the upstream's Content-Length when it declared one (the raw bytes are
            # passed unchanged); otherwise h11 chunks the body for the client.
            declared = "content-length" in response.headers and (
                "transfer-encoding" not in response.headers
            )
            out_headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in HOP_BY_HOP
                and (declared or name.lower() != b"content-length")
            ]
            await self._send(
                conn,
                writer,
                h11.Response(
                    status_code=response.status_code,
                    headers=out_headers,
                    reason=response.extensions.get("reason_phrase", b""),
                ),
            )
            async for chunk in response.aiter_raw():
                if chunk:
                    await self._send(conn, writer, h11.Data(data=chunk))
            await self._send(conn, writer, h11.EndOfMessage())
        except httpx.HTTPError as exc:
            # The upstream broke mid-body: the client must see a broken response too.
            self._note(f"{note}: upstream broke mid-body: {type(exc).__name__}: {exc}")
            raise _ClientGone() from exc
        except asyncio.CancelledError:
            self._note(f"{note}: client disconnected; upstream response closed")
            raise
        finally:
            await response.aclose()

    @staticmethod
    async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, event) -> None:
        data = conn.send(event)
        if data:
            writer.write(data)
            await writer.drain()  # flush: an SSE event reaches the client at once

    async def _send_error(self, conn, writer, status: int, text: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = text.encode()
        with contextlib.suppress(Exception):
            await self._send(
                conn,
                writer,
                h11.Response(
                    status_code=status,
                    headers=[
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                ),
            )
            await self._send(conn, writer, h11.Data(data=body))
            await self._send(conn, writer, h11.EndOfMessage())
