"""Store: the first namespace label must be the caller's identity (403 otherwise).

Deliberately not asserted (in-memory quirks of the reference, auth-semantics §12): a get on a
missing namespace making it appear in list_namespaces. Namespaces are only checked for
membership, never for equality."""
from __future__ import annotations

from compat_helpers import STORE_DENIED, expect_error

ITEM_KEYS = {"namespace", "key", "value", "created_at", "updated_at"}


async def test_put_get_search_list_delete(user1, tag):
    ns = ["user1", f"prefs-{tag}"]
    value = {"a": 1, "tag": tag}

    assert await user1.store.put_item(ns, "k", value) is None

    item = await user1.store.get_item(ns, "k")
    assert ITEM_KEYS <= set(item), item
    assert item["namespace"] == ns
    assert item["key"] == "k"
    assert item["value"] == value

    # a missing key in an existing namespace: 200 null -> None
    assert await user1.store.get_item(ns, "missing") is None

    # search under the caller's prefix finds it
    found = await user1.store.search_items(["user1"], filter={"tag": tag})
    assert [(i["namespace"], i["key"], i["value"]) for i in found["items"]] == [
        (ns, "k", value)
    ]
    found = await user1.store.search_items(ns)
    assert [i["key"] for i in found["items"]] == ["k"]

    listed = await user1.store.list_namespaces(prefix=ns)
    assert ns in listed["namespaces"]
    listed = await user1.store.list_namespaces(prefix=["user1"], limit=1000)
    assert ns in listed["namespaces"]

    # overwrite
    await user1.store.put_item(ns, "k", {"a": 2, "tag": tag})
    assert (await user1.store.get_item(ns, "k"))["value"] == {"a": 2, "tag": tag}

    assert await user1.store.delete_item(ns, "k") is None
    assert await user1.store.get_item(ns, "k") is None
    # deleting what is not there is not an error (204)
    assert await user1.store.delete_item(ns, "k") is None
    found = await user1.store.search_items(["user1"], filter={"tag": tag})
    assert found["items"] == []


async def test_missing_item_is_none(user1, tag):
    assert await user1.store.get_item(["user1", f"nothing-{tag}"], "k") is None


async def test_cannot_write_into_another_users_namespace(user1, user2, tag):
    ns2 = ["user2", f"prefs-{tag}"]
    await expect_error(user1.store.put_item(ns2, "k", {"a": 1}), 403, STORE_DENIED)
    assert await user2.store.get_item(ns2, "k") is None


async def test_cannot_read_or_delete_another_users_namespace(user1, user2, tag):
    ns = ["user1", f"prefs-{tag}"]
    await user1.store.put_item(ns, "k", {"a": 1})

    await expect_error(user2.store.get_item(ns, "k"), 403, STORE_DENIED)
    await expect_error(user2.store.get_item(ns, "absent"), 403, STORE_DENIED)
    await expect_error(user2.store.delete_item(ns, "k"), 403, STORE_DENIED)
    await expect_error(user2.store.search_items(["user1"]), 403, STORE_DENIED)
    await expect_error(user2.store.list_namespaces(prefix=["user1"]), 403, STORE_DENIED)

    # still there for its owner
    assert (await user1.store.get_item(ns, "k"))["value"] == {"a": 1}
    await user1.store.delete_item(ns, "k")


async def test_namespace_must_be_given(user1):
    # list_namespaces with no prefix: the handler sees no namespace -> denied
    await expect_error(user1.store.list_namespaces(), 403, STORE_DENIED)


async def test_reader_has_its_own_namespace(reader, tag):
    # the store rule checks identity only: the reader (no threads:create) may write here
    ns = ["reader", f"notes-{tag}"]
    await reader.store.put_item(ns, "k", {"a": 1})
    assert (await reader.store.get_item(ns, "k"))["value"] == {"a": 1}
    await reader.store.delete_item(ns, "k")
    await expect_error(reader.store.put_item(["user1", f"notes-{tag}"], "k", {}), 403, STORE_DENIED)
