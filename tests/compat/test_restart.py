"""Data survives a restart on the same data directory (Warden only: it starts its own
servers, so it is skipped when WARDEN_COMPAT_URL points at a running server)."""
from __future__ import annotations

from compat_helpers import TOKENS, make_client


async def test_thread_and_store_item_survive_a_restart(start_server, tmp_path, tag):
    data_dir = tmp_path / "data"
    ns = ["user1", f"prefs-{tag}"]

    first = start_server(data_dir)
    c = make_client(first.url, TOKENS["user1"])
    try:
        thread = await c.threads.create(metadata={"tag": tag})
        await c.store.put_item(ns, "k", {"a": 1})
    finally:
        await c.aclose()
    first.stop()

    second = start_server(data_dir)
    c = make_client(second.url, TOKENS["user1"])
    other = make_client(second.url, TOKENS["user2"])
    try:
        got = await c.threads.get(thread["thread_id"])
        assert got["metadata"] == {"owner": "user1", "tag": tag}
        assert [t["thread_id"] for t in await c.threads.search(metadata={"tag": tag})] == [
            thread["thread_id"]
        ]
        item = await c.store.get_item(ns, "k")
        assert item is not None and item["value"] == {"a": 1}
        # the owner filter still applies after the restart
        assert await other.threads.search(metadata={"tag": tag}) == []
    finally:
        await c.aclose()
        await other.aclose()
