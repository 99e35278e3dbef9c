"""Crons: owner stamped into the cron's metadata on create, every search/count/delete
filtered by owner. `crons.create("agent", ...)` resolves the graph name to the system
assistant."""
from __future__ import annotations

import contextlib

from compat_helpers import SYSTEM_AGENT_ID, expect_error

INPUT = {"messages": [{"role": "user", "content": "hello"}]}


@contextlib.asynccontextmanager
async def cron_of(client, **kwargs):
    """Create a cron and make sure it is gone afterwards (it would otherwise fire)."""
    cron = await client.crons.create("agent", schedule="*/5 * * * *", input=INPUT, **kwargs)
    try:
        yield cron
    finally:
        with contextlib.suppress(Exception):
            await client.crons.delete(cron["cron_id"])


async def test_cron_is_owned_and_filtered(user1, user2, tag):
    async with cron_of(user1, metadata={"tag": tag, "owner": "user2"}) as cron:
        cid = cron["cron_id"]
        assert cid
        assert cron["assistant_id"] == SYSTEM_AGENT_ID
        assert cron["schedule"] == "*/5 * * * *"
        assert cron["metadata"] == {"tag": tag, "owner": "user1"}

        found = await user1.crons.search(metadata={"tag": tag})
        assert [c["cron_id"] for c in found] == [cid]
        assert found[0]["metadata"] == {"tag": tag, "owner": "user1"}
        assert await user1.crons.count(metadata={"tag": tag}) == 1

        assert await user2.crons.search(metadata={"tag": tag}) == []
        assert await user2.crons.count(metadata={"tag": tag}) == 0
        total = await user2.crons.count()
        everything = await user2.crons.search(limit=total + 50)
        assert len(everything) == total
        assert cid not in {c["cron_id"] for c in everything}

        await expect_error(user2.crons.delete(cid), 404, "Not Found")
        assert [c["cron_id"] for c in await user1.crons.search(metadata={"tag": tag})] == [cid]

        assert await user1.crons.delete(cid) is None
        assert await user1.crons.search(metadata={"tag": tag}) == []
        assert await user1.crons.count(metadata={"tag": tag}) == 0
        await expect_error(user1.crons.delete(cid), 404, "Not Found")


async def test_each_user_counts_only_their_crons(user1, user2, tag):
    async with cron_of(user1, metadata={"tag": tag}) as c1, cron_of(
        user2, metadata={"tag": tag}
    ) as c2, cron_of(user2, metadata={"tag": tag}) as c3:
        assert await user1.crons.count(metadata={"tag": tag}) == 1
        assert await user2.crons.count(metadata={"tag": tag}) == 2
        ids1 = {c["cron_id"] for c in await user1.crons.search(metadata={"tag": tag})}
        ids2 = {c["cron_id"] for c in await user2.crons.search(metadata={"tag": tag})}
        assert ids1 == {c1["cron_id"]}
        assert ids2 == {c2["cron_id"], c3["cron_id"]}
        for c in (c2, c3):
            assert c["metadata"]["owner"] == "user2"


async def test_cron_schedule_is_read_in_its_timezone(user1):
    """The SDK's `timezone=`: 09:30 in Kolkata (UTC+5:30) fires at 04:00 UTC;
    an update of the timezone alone moves the next run; an unknown zone is 422."""
    from datetime import datetime, timedelta, timezone

    def next_utc(cron):
        at = datetime.fromisoformat(cron["next_run_date"]).astimezone(timezone.utc)
        assert timedelta(0) < at - datetime.now(timezone.utc) <= timedelta(days=1)
        return at.hour, at.minute

    cron = await user1.crons.create(
        "agent", schedule="30 9 * * *", input=INPUT, timezone="Asia/Kolkata"
    )
    try:
        assert cron["timezone"] == "Asia/Kolkata"
        assert next_utc(cron) == (4, 0)
        moved = await user1.crons.update(cron["cron_id"], timezone="UTC")
        assert moved["timezone"] == "UTC"
        assert next_utc(moved) == (9, 30)
        await expect_error(
            user1.crons.update(cron["cron_id"], timezone="Mars/Olympus_Mons"),
            422,
            "Invalid timezone: 'Mars/Olympus_Mons'. "
            "Use IANA timezone format (e.g. 'America/New_York').",
        )
    finally:
        await user1.crons.delete(cron["cron_id"])
