"""Assistants: create/update/delete are admin-only (403 otherwise); read and search are
open to every authenticated user, unfiltered; the system assistant of graph "agent"."""
from __future__ import annotations

import uuid

from compat_helpers import ADMIN_ONLY, SYSTEM_AGENT_ID, expect_error


async def test_system_assistant(user1):
    a = await user1.assistants.get(SYSTEM_AGENT_ID)
    assert a["assistant_id"] == SYSTEM_AGENT_ID
    assert a["graph_id"] == "agent"
    assert a["metadata"] == {"created_by": "system"}
    assert a["version"] == 1
    assert a["name"] == "agent"

    found = await user1.assistants.search(
        graph_id="agent", metadata={"created_by": "system"}
    )
    assert [x["assistant_id"] for x in found] == [SYSTEM_AGENT_ID]


async def test_assistant_path_id_must_be_a_uuid(user1):
    # a graph name is not accepted in place of an id here (only in runs and crons)
    await expect_error(
        user1.assistants.get("agent"), 422, "Invalid assistant ID: must be a UUID"
    )


async def test_non_admin_cannot_create(user1, reader, tag):
    for who in (user1, reader):
        await expect_error(
            who.assistants.create(graph_id="agent", metadata={"tag": tag}), 403, ADMIN_ONLY
        )
    assert await user1.assistants.search(metadata={"tag": tag}) == []


async def test_admin_lifecycle_and_non_admin_access(admin, user1, user2, tag):
    created = await admin.assistants.create(
        graph_id="agent", name=f"compat-{tag}", metadata={"tag": tag, "owner": "user1"}
    )
    aid = created["assistant_id"]
    uuid.UUID(aid)
    assert aid != SYSTEM_AGENT_ID
    assert created["graph_id"] == "agent"
    assert created["name"] == f"compat-{tag}"
    assert created["version"] == 1
    assert created["metadata"] == {"tag": tag, "owner": "admin"}

    # any authenticated user reads and finds it: no filter on assistants
    for who in (user1, user2):
        got = await who.assistants.get(aid)
        assert got["assistant_id"] == aid
        assert got["metadata"] == {"tag": tag, "owner": "admin"}
        found = await who.assistants.search(metadata={"tag": tag})
        assert [x["assistant_id"] for x in found] == [aid]
        assert await who.assistants.count(metadata={"tag": tag}) == 1

    # admin updates: new version, metadata merged
    updated = await admin.assistants.update(aid, metadata={"x": 1})
    assert updated["version"] == 2
    assert updated["metadata"] == {"tag": tag, "owner": "admin", "x": 1}
    assert (await user1.assistants.get(aid))["version"] == 2

    # non-admins cannot modify it
    await expect_error(user1.assistants.update(aid, metadata={"x": 2}), 403, ADMIN_ONLY)
    await expect_error(user1.assistants.delete(aid), 403, ADMIN_ONLY)
    assert (await user1.assistants.get(aid))["metadata"]["x"] == 1

    # admin deletes
    assert await admin.assistants.delete(aid) is None
    await expect_error(user1.assistants.get(aid), 404, "Not Found")
    await expect_error(admin.assistants.get(aid), 404, "Not Found")
    assert await user1.assistants.search(metadata={"tag": tag}) == []


async def test_non_admin_cannot_touch_the_system_assistant(user1):
    await expect_error(
        user1.assistants.update(SYSTEM_AGENT_ID, metadata={"x": 1}), 403, ADMIN_ONLY
    )
    await expect_error(user1.assistants.delete(SYSTEM_AGENT_ID), 403, ADMIN_ONLY)
    a = await user1.assistants.get(SYSTEM_AGENT_ID)
    assert a["metadata"] == {"created_by": "system"}


async def test_versions_listed_and_set_latest(admin, user1, tag):
    """Every update is a version; `get_versions` lists them newest first, for any
    reader; `set_latest` (admin-only under the policy) makes an older one current."""
    a = await admin.assistants.create(graph_id="agent", name=f"first-{tag}", metadata={"tag": tag})
    aid = a["assistant_id"]
    try:
        await admin.assistants.update(aid, name=f"second-{tag}", metadata={"stage": "two"})
        versions = await user1.assistants.get_versions(aid)
        assert [(v["version"], v["name"]) for v in versions] == [
            (2, f"second-{tag}"),
            (1, f"first-{tag}"),
        ]
        staged = await user1.assistants.get_versions(aid, metadata={"stage": "two"})
        assert [v["version"] for v in staged] == [2]
        assert [v["version"] for v in await user1.assistants.get_versions(aid, limit=1, offset=1)] == [1]

        await expect_error(user1.assistants.set_latest(aid, 1), 403, ADMIN_ONLY)
        back = await admin.assistants.set_latest(aid, 1)
        assert (back["version"], back["name"]) == (1, f"first-{tag}")
        assert back["metadata"] == {"tag": tag, "owner": "admin"}
        assert (await user1.assistants.get(aid))["version"] == 1
        await expect_error(
            admin.assistants.set_latest(aid, 9), 404, f"Version 9 not found for assistant {aid}"
        )
        missing = str(uuid.uuid4())
        await expect_error(
            user1.assistants.get_versions(missing), 404, f"Assistant {missing} not found"
        )
    finally:
        await admin.assistants.delete(aid)
