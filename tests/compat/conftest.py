"""Fixtures of the Python compatibility suite.

The suite drives a real server with the unmodified ``langgraph_sdk`` async client.

* By default it starts ``$WARDEN_BIN serve --config examples/reference/langgraph.json``
  (``$WARDEN_COMPAT_CONFIG`` names another deployment)
  (``WARDEN_BIN`` defaults to ``<repo>/target/debug/warden``) on a free loopback port with
  a fresh data directory, once per session, and stops it at the end.
* With ``WARDEN_COMPAT_REPLICAS=N`` (N > 1; ``run.sh --replicas N`` sets it, with
  ``DATABASE_URI`` on a fresh PostgreSQL database) it starts N ``warden serve`` replicas on
  that database, each on its own free port with its own data directory, and a round-robin
  proxy (``round_robin.py``, on a thread of this process) that sends each successive
  request to the next replica: the tests talk to the proxy, so every flow of several
  requests spans the replicas. At the end the proxy's per-replica counts are reported, and
  the session fails unless every replica served a fair share of the requests.
* With ``WARDEN_COMPAT_URL=http://127.0.0.1:<port>`` it starts nothing and tests that
  server instead; this is how the suite is checked against the reference
  (``langgraph dev`` on ``/work/shared/reference``). Tests that must start their own
  servers (restart) are skipped then.

The policy under test is the reference one (``/work/shared/reference/src/security/auth.py``,
mirrored by ``examples/reference/auth``): tokens ``user1-token``, ``user2-token``,
``admin-token``, ``reader-token``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

from compat_helpers import TOKENS, make_client
from round_robin import RoundRobinProxy

REPO = Path(__file__).resolve().parents[2]
# The deployment under test: the reference policy in Rust, or (WARDEN_COMPAT_CONFIG)
# the same policy in another language, e.g. examples/python/langgraph.json.
CONFIG = os.environ.get("WARDEN_COMPAT_CONFIG", "examples/reference/langgraph.json")
READY_TIMEOUT_S = 120.0  # the first start may build the wasm plugin with cargo
STOP_TIMEOUT_S = 15.0
RESERVED_PORTS = {2024}  # belongs to the machine's infrastructure: never use it

# Loopback traffic must never go through a proxy the environment may configure.
for _var in ("NO_PROXY", "no_proxy"):
    _cur = os.environ.get(_var, "")
    if "127.0.0.1" not in _cur:
        os.environ[_var] = ",".join(filter(None, [_cur, "127.0.0.1", "localhost"]))

# Every server this session started, for the failure report.
_STARTED: list["WardenServer"] = []
# The round-robin proxy in front of the replicas (replicas mode only).
_PROXIES: list[RoundRobinProxy] = []
# Each replica must have served at least this share of a fair 1/N of the requests.
FAIR_SHARE = 2 / 3


def external_url() -> Optional[str]:
    url = os.environ.get("WARDEN_COMPAT_URL", "").strip()
    return url.rstrip("/") or None


def replica_count() -> int:
    """How many replicas the session starts behind the round-robin proxy (1: no proxy)."""
    raw = os.environ.get("WARDEN_COMPAT_REPLICAS", "").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"WARDEN_COMPAT_REPLICAS must be a positive integer, not {raw!r}")
    return n


def warden_bin() -> Path:
    return Path(os.environ.get("WARDEN_BIN") or REPO / "target" / "debug" / "warden")


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


@dataclass
class WardenServer:
    """One `warden serve` subprocess on a free loopback port."""

    data_dir: Path
    log_path: Path
    label: str = "warden"
    config: str = CONFIG
    proc: Optional[subprocess.Popen] = None
    port: int = 0
    _log: Optional[object] = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WardenServer":
        binary = warden_bin()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(
                f"server binary not found: {binary} (build it with `cargo build -p warden`, "
                "set WARDEN_BIN, or set WARDEN_COMPAT_URL to test a running server)",
                pytrace=False,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A port can be taken between probing and binding: retry on an early exit.
        for attempt in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab")
            self._log.write(f"\n=== attempt {attempt + 1}: port {self.port} ===\n".encode())
            self._log.flush()
            self.proc = subprocess.Popen(
                [
                    str(binary), "serve",
                    "--config", self.config,
                    "--host", "127.0.0.1",
                    "--port", str(self.port),
                    "--data-dir", str(self.data_dir),
                ],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches a cargo child too
            )
            if self._wait_ready():
                _STARTED.append(self)  # its output goes in the failure report
                return self
            if self.proc.poll() is None or "in use" not in self._attempt_output():
                break  # a timeout or a real start-up error, not a port clash: no retry
            self._close_log()
        code = self.proc.poll()
        self.stop()
        pytest.fail(
            "warden did not become ready (GET /ok answering 200) "
            + (f"within {READY_TIMEOUT_S:.0f} s" if code is None else f"and exited with code {code}")
            + f"; its output ({self.log_path}):\n"
            + self.log_tail(),
            pytrace=False,
        )

    def _attempt_output(self) -> str:
        text = self.log_path.read_text(errors="replace")
        return text.rsplit("\n=== attempt ", 1)[-1].lower()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/ok", timeout=2.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=STOP_TIMEOUT_S)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, max_lines: int = 200) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output captured)"
        return "\n".join(lines[-max_lines:])


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    """Base URL of the server under test (started here unless WARDEN_COMPAT_URL is set)."""
    url = external_url()
    if url is not None:
        yield url
        return
    base = tmp_path_factory.mktemp("warden")
    replicas = replica_count()
    if replicas == 1:
        server = WardenServer(data_dir=base / "data", log_path=base / "server.log").start()
        try:
            yield server.url
        finally:
            server.stop()
        return

    if not os.environ.get("DATABASE_URI", "").startswith(("postgres://", "postgresql://")):
        pytest.fail(
            f"WARDEN_COMPAT_REPLICAS={replicas} needs DATABASE_URI=postgres://... (the replicas "
            "share one database): run `tests/compat/run.sh --postgres --replicas N`",
            pytrace=False,
        )
    servers: list[WardenServer] = []
    proxy: Optional[RoundRobinProxy] = None
    try:
        # One after the other: the first creates the schema, the others find it.
        for i in range(1, replicas + 1):
            server = WardenServer(
                data_dir=base / f"data-{i}",
                log_path=base / f"replica-{i}.log",
                label=f"replica #{i}",
            )
            servers.append(server)
            server.start()
        proxy = RoundRobinProxy([s.url for s in servers]).start()
        _PROXIES.append(proxy)
        yield proxy.url
    finally:
        if proxy is not None:
            proxy.stop()
            with open(base / "proxy.log", "w") as log:
                for label, line in proxy.log:
                    log.write(f"{line}    [{label}]\n")
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def is_warden(server_url: str) -> bool:
    """Whether the server under test is Warden (its `/info` lists plugins), not the
    reference `langgraph dev` that WARDEN_COMPAT_URL may point at."""
    return "plugins" in httpx.get(f"{server_url}/info", timeout=10).json()


@pytest.fixture
def start_server(tmp_path: Path) -> Callable[[Path], WardenServer]:
    """Start extra servers of this test's own (stopped at the end of the test). With
    --postgres (replicas mode too) they keep their records in the session's database,
    beside the session's servers, and are reached directly (not through the proxy)."""
    if external_url() is not None:
        pytest.skip("starts its own servers; not possible with WARDEN_COMPAT_URL")
    servers: list[WardenServer] = []

    def start(data_dir: Path) -> WardenServer:
        server = WardenServer(
            data_dir=data_dir, log_path=tmp_path / f"server-{len(servers) + 1}.log"
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def assistant(tmp_path_factory: pytest.TempPathFactory):
    """``examples/assistant`` (the reference policy, and a chat agent that asks before it
    sends an e-mail) served by its own ``warden serve``, its model a ``FakeModel`` on
    127.0.0.1 (in ``allowed_hosts``), also as ``assistant_offlist`` (the model's host off
    its allowlist) and ``assistant_hurried`` (a 3 s deadline): yields ``(url, model)``.
    On the session's database with --postgres."""
    if external_url() is not None:
        pytest.skip("serves examples/assistant itself; not possible with WARDEN_COMPAT_URL")
    from fake_model import FakeModel

    model = FakeModel().start()
    base = tmp_path_factory.mktemp("assistant")
    config = base / "langgraph.json"
    agent = str(REPO / "examples" / "assistant" / "agent")
    settings = {"base_url": model.base_url, "model": "test-model"}
    config.write_text(json.dumps({
        "graphs": {
            "assistant": {"path": agent, "config": settings, "allowed_hosts": [model.origin]},
            # The same graph, its model's host off its allowlist.
            "assistant_offlist": {"path": agent, "config": settings,
                                  "allowed_hosts": ["http://127.0.0.1:9"]},
            # The same graph, with a short deadline.
            "assistant_hurried": {"path": agent, "config": settings, "timeout_ms": 3000,
                                  "allowed_hosts": [model.origin]},
        },
        "auth": {"path": str(REPO / "examples" / "reference" / "auth"),
                 "disable_studio_auth": True},
    }))
    server = WardenServer(data_dir=base / "data", log_path=base / "server.log",
                          label="assistant", config=str(config)).start()
    try:
        yield server.url, model
    finally:
        server.stop()
        model.stop()


@pytest.fixture(scope="session")
def fanout(tmp_path_factory: pytest.TempPathFactory):
    """``tests/fixtures/fanout-graph`` (a map-reduce over ``Send``: one ``write`` task per
    subject, the subject ``ask`` asking a human) under the reference policy, served by its
    own ``warden serve``: yields its URL. On the session's database with --postgres."""
    if external_url() is not None:
        pytest.skip("serves tests/fixtures/fanout-graph itself; not possible with WARDEN_COMPAT_URL")
    base = tmp_path_factory.mktemp("fanout")
    config = base / "langgraph.json"
    config.write_text(json.dumps({
        "graphs": {"fanout": str(REPO / "tests" / "fixtures" / "fanout-graph")},
        "auth": {"path": str(REPO / "examples" / "reference" / "auth"),
                 "disable_studio_auth": True},
    }))
    server = WardenServer(data_dir=base / "data", log_path=base / "server.log",
                          label="fanout", config=str(config)).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def client(server_url: str):
    """Factory: ``client("user1")`` (a name of TOKENS), ``client(None)`` (no token), or
    ``client(authorization="Basic ...")`` (any Authorization header). Closed after the test."""
    made = []

    def factory(who: Optional[str] = None, *, authorization: Optional[str] = None):
        if authorization is not None:
            c = make_client(server_url, None, Authorization=authorization)
        else:
            c = make_client(server_url, TOKENS[who] if who is not None else None)
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.aclose()


@pytest.fixture
def user1(client):
    return client("user1")


@pytest.fixture
def user2(client):
    return client("user2")


@pytest.fixture
def admin(client):
    return client("admin")


@pytest.fixture
def reader(client):
    return client("reader")


@pytest.fixture
def anon(client):
    return client(None)


@pytest.fixture
def tag() -> str:
    """A value unique to this test, put in metadata so searches only see this test's data
    (the server under test may hold data from earlier tests or runs)."""
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------
# Report: the proxy's share of requests per replica; on failure, what the servers this
# session started wrote.


def _unfair(proxy: RoundRobinProxy) -> list[int]:
    """The replicas (0-based) that served less than their fair share of the requests."""
    floor = int(FAIR_SHARE * proxy.total / len(proxy.counts))
    return [i for i, n in enumerate(proxy.counts) if n < floor]


def pytest_runtest_logstart(nodeid, location):
    for proxy in _PROXIES:
        proxy.label = nodeid  # the proxy's log says which test sent each request


def pytest_sessionfinish(session, exitstatus):
    for proxy in _PROXIES:
        if _unfair(proxy) or proxy.errors:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if any(_unfair(proxy) or proxy.errors for proxy in _PROXIES):
        exitstatus = pytest.ExitCode.TESTS_FAILED  # set by pytest_sessionfinish, not seen here
    for proxy in _PROXIES:
        counts = ", ".join(f"replica #{i} {n}" for i, n in enumerate(proxy.counts, 1))
        terminalreporter.write_sep("-", "round-robin proxy")
        terminalreporter.write_line(f"requests per replica: {counts} (total {proxy.total})")
        unfair = _unfair(proxy)
        if unfair:
            terminalreporter.write_line(
                "FAILED: the alternation is not proven: "
                + ", ".join(f"replica #{i + 1}" for i in unfair)
                + f" served less than {FAIR_SHARE:.0%} of a fair share "
                f"({proxy.total / len(proxy.counts):.0f} requests)",
                red=True,
            )
        for error in proxy.errors:
            terminalreporter.write_line(f"FAILED: proxy error: {error}", red=True)
    if not _STARTED or exitstatus == 0:
        return
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    for proxy in _PROXIES:
        for report in failed:
            nodeid = getattr(report, "nodeid", "")
            terminalreporter.write_sep("-", f"round-robin proxy: requests of {nodeid}")
            terminalreporter.write_line("\n".join(proxy.requests_of(nodeid)) or "(none)")
    for i, server in enumerate(_STARTED, 1):
        terminalreporter.write_sep("-", f"{server.label} output #{i} ({server.log_path})")
        terminalreporter.write_line(server.log_tail())
