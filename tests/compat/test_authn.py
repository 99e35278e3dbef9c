"""Public routes and authentication (the custom authenticate handler)."""
from __future__ import annotations

import httpx
import pytest

from compat_helpers import expect_error


async def test_ok_and_info_need_no_token(server_url):
    async with httpx.AsyncClient(base_url=server_url) as http:
        ok = await http.get("/ok")
        assert ok.status_code == 200
        assert ok.json()["ok"] is True

        info = await http.get("/info")
        assert info.status_code == 200
        assert isinstance(info.json(), dict)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.threads.search(), id="threads.search"),
        pytest.param(lambda c: c.threads.create(), id="threads.create"),
        pytest.param(lambda c: c.threads.count(), id="threads.count"),
        pytest.param(lambda c: c.assistants.search(), id="assistants.search"),
        pytest.param(lambda c: c.crons.search(), id="crons.search"),
        pytest.param(lambda c: c.store.search_items(["user1"]), id="store.search_items"),
    ],
)
async def test_no_token_is_401(anon, call):
    await expect_error(call(anon), 401, "Missing Authorization header")


@pytest.mark.parametrize(
    "authorization, detail",
    [
        ("Bearer not-a-token", "Invalid token"),
        ("Basic dXNlcjE6dXNlcjE=", "Invalid Authorization scheme; expected Bearer"),
        ("Bearer", "Invalid Authorization scheme; expected Bearer"),
        ("user1-token", "Invalid Authorization scheme; expected Bearer"),
    ],
)
async def test_bad_credentials_are_401(client, authorization, detail):
    c = client(authorization=authorization)
    await expect_error(c.threads.search(), 401, detail)
    await expect_error(c.threads.create(), 401, detail)


async def test_valid_tokens_are_accepted(client):
    for who in ("user1", "user2", "admin", "reader"):
        threads = await client(who).threads.search()
        assert isinstance(threads, list)


async def test_authentication_runs_before_routing(server_url):
    async with httpx.AsyncClient(base_url=server_url) as http:
        r = await http.get("/no-such-route")
        assert r.status_code == 401
        assert r.json() == {"detail": "Missing Authorization header"}

        r = await http.get(
            "/no-such-route", headers={"Authorization": "Bearer user1-token"}
        )
        assert r.status_code == 404
