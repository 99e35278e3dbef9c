"""Threads under the owner-only policy (the "resource authorization" tutorial flow):
owner stamped on create/update, every read/search/update/delete filtered by owner, and
another user's thread looks like a missing one (404), never a 403."""
from __future__ import annotations

from compat_helpers import MISSING_PERMISSION, expect_error


async def test_create_stamps_owner_over_client_value(user1, tag):
    thread = await user1.threads.create(metadata={"owner": "user2", "tag": tag})
    assert thread["metadata"] == {"owner": "user1", "tag": tag}
    assert thread["status"] == "idle"

    got = await user1.threads.get(thread["thread_id"])
    assert got["thread_id"] == thread["thread_id"]
    assert got["metadata"] == {"owner": "user1", "tag": tag}


async def test_create_without_metadata_is_stamped(user2):
    thread = await user2.threads.create()
    assert thread["metadata"] == {"owner": "user2"}


async def test_other_user_gets_404(user1, user2, admin, reader, tag):
    thread = await user1.threads.create(metadata={"tag": tag})
    tid = thread["thread_id"]
    # the owner filter applies to everyone, admin included
    for other in (user2, admin, reader):
        await expect_error(other.threads.get(tid), 404, f"Thread with ID {tid} not found")
        assert await other.threads.search(metadata={"tag": tag}) == []
    # the owner still sees it
    assert (await user1.threads.get(tid))["metadata"]["owner"] == "user1"


async def test_search_and_count_are_per_user(user1, user2, tag):
    mine = await user1.threads.create(metadata={"tag": tag})
    theirs = await user2.threads.create(metadata={"tag": tag})

    found1 = await user1.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found1] == [mine["thread_id"]]
    found2 = await user2.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found2] == [theirs["thread_id"]]
    assert await user1.threads.count(metadata={"tag": tag}) == 1
    assert await user2.threads.count(metadata={"tag": tag}) == 1

    # a client filter on someone else's owner value finds nothing
    assert await user2.threads.search(metadata={"tag": tag, "owner": "user1"}) == []
    assert await user2.threads.count(metadata={"tag": tag, "owner": "user1"}) == 0

    # unfiltered: only user2's threads, and count agrees with search
    total = await user2.threads.count()
    everything = await user2.threads.search(limit=total + 50)
    assert len(everything) == total
    assert mine["thread_id"] not in {t["thread_id"] for t in everything}
    assert theirs["thread_id"] in {t["thread_id"] for t in everything}
    assert {t["metadata"].get("owner") for t in everything} == {"user2"}

    # a second thread of user2's shows up in user2's count only
    await user2.threads.create(metadata={"tag": tag})
    assert await user2.threads.count(metadata={"tag": tag}) == 2
    assert await user1.threads.count(metadata={"tag": tag}) == 1


async def test_other_user_cannot_update_or_delete(user1, user2, tag):
    thread = await user1.threads.create(metadata={"tag": tag, "a": 1})
    tid = thread["thread_id"]

    await expect_error(user2.threads.update(tid, metadata={"a": 2}), 404, "Not Found")
    await expect_error(user2.threads.delete(tid), 404, f"Thread with ID {tid} not found")

    got = await user1.threads.get(tid)
    assert got["metadata"] == {"owner": "user1", "tag": tag, "a": 1}


async def test_owner_update_merges_metadata_and_keeps_owner(user1, tag):
    thread = await user1.threads.create(metadata={"tag": tag, "a": 1})
    tid = thread["thread_id"]

    updated = await user1.threads.update(tid, metadata={"b": 2, "owner": "user2"})
    assert updated["thread_id"] == tid
    assert updated["metadata"] == {"owner": "user1", "tag": tag, "a": 1, "b": 2}
    assert updated["updated_at"] >= thread["updated_at"]

    got = await user1.threads.get(tid)
    assert got["metadata"] == {"owner": "user1", "tag": tag, "a": 1, "b": 2}


async def test_owner_delete(user1, tag):
    thread = await user1.threads.create(metadata={"tag": tag})
    tid = thread["thread_id"]

    assert await user1.threads.delete(tid) is None
    await expect_error(user1.threads.get(tid), 404, f"Thread with ID {tid} not found")
    await expect_error(user1.threads.delete(tid), 404, f"Thread with ID {tid} not found")
    assert await user1.threads.search(metadata={"tag": tag}) == []


async def test_reader_cannot_create_a_thread(reader, tag):
    await expect_error(
        reader.threads.create(metadata={"tag": tag}), 403, MISSING_PERMISSION
    )
    # reading is allowed (and filtered to the reader's own threads, of which it has none)
    assert await reader.threads.search(metadata={"tag": tag}) == []
    assert await reader.threads.count(metadata={"tag": tag}) == 0


async def test_prune_is_all_or_nothing_across_owners(user1, user2, tag):
    """`threads.prune`: one thread of another user refuses the whole batch with a 404;
    the caller's own threads are deleted and counted."""
    a = (await user1.threads.create(metadata={"tag": tag}))["thread_id"]
    b = (await user1.threads.create(metadata={"tag": tag}))["thread_id"]
    other = (await user2.threads.create(metadata={"tag": tag}))["thread_id"]

    await expect_error(
        user1.threads.prune([a, other]), 404, "At least one thread not found or not authorized"
    )
    assert (await user1.threads.get(a))["thread_id"] == a
    assert await user1.threads.prune([a, b]) == {"pruned_count": 2}
    await expect_error(user1.threads.get(a), 404)
    assert (await user2.threads.get(other))["thread_id"] == other
    await expect_error(
        user2.threads.prune([other], strategy="everything"),
        422,
        '"everything" is not one of "delete" or "keep_latest"\n\n'
        'Failed validating "enum" in schema["properties"]["strategy"]\n\n'
        'On instance["strategy"]:\n    "everything"',
    )
    assert await user2.threads.prune([]) == {"pruned_count": 0}
    assert await user2.threads.prune([other]) == {"pruned_count": 1}
