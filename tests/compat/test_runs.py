"""Runs of the echo graph `agent` (``/work/shared/reference/src/agent/graph.py``): it appends
an AI message echoing the last user message and sets ``seen_user`` to the caller's identity.

Covers wait / create+join / stream on a thread, stateless runs, history, the graph and its
schemas, owner isolation of runs (another user's thread is a 404) and identity spoofing
through ``config.configurable``. Multitask ``reject`` is not tested here: the echo graph is
too fast to keep a thread busy deterministically (the Rust e2e tests use a slow graph)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from compat_helpers import SYSTEM_AGENT_ID, expect_error

GRAPH = "agent"


def user_input(text: str = "hi") -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def new_thread(who, tag: str) -> str:
    return (await who.threads.create(metadata={"tag": tag}))["thread_id"]


def assert_echo(values: dict, text: str, identity: str) -> None:
    """The state after one echo step: the last message echoes `text`, seen by `identity`."""
    last = values["messages"][-1]
    assert last["type"] == "ai", values
    assert last["content"] == text, values
    assert values["seen_user"] == identity, values


async def collect(stream) -> list[Any]:
    return [part async for part in stream]


# ---------------------------------------------------------------------------------------
# runs.wait on a thread


async def test_wait_returns_the_echo_seen_by_the_caller(user1, tag):
    tid = await new_thread(user1, tag)
    result = await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]
    assert_echo(result, "hi", "user1")


async def test_wait_result_is_the_thread_state(user1, tag):
    tid = await new_thread(user1, tag)
    result = await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    state = await user1.threads.get_state(tid)
    assert state["values"] == result
    assert state["next"] == []


async def test_thread_is_idle_after_wait(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    thread = await user1.threads.get(tid)
    assert thread["status"] == "idle"
    assert_echo(thread["values"], "hi", "user1")


# ---------------------------------------------------------------------------------------
# runs.create + runs.join / get / list


async def test_create_then_join_returns_the_echo(user1, tag):
    tid = await new_thread(user1, tag)
    run = await user1.runs.create(tid, GRAPH, input=user_input("hi"))
    assert run["thread_id"] == tid
    assert run["assistant_id"] == SYSTEM_AGENT_ID  # the graph name resolves to it
    assert run["status"] == "pending"
    result = await user1.runs.join(tid, run["run_id"])
    assert_echo(result, "hi", "user1")


async def test_joined_run_is_success_and_listed(user1, tag):
    tid = await new_thread(user1, tag)
    run = await user1.runs.create(tid, GRAPH, input=user_input("hi"))
    rid = run["run_id"]
    await user1.runs.join(tid, rid)

    got = await user1.runs.get(tid, rid)
    assert (got["run_id"], got["thread_id"], got["status"]) == (rid, tid, "success")
    listed = await user1.runs.list(tid)
    assert [r["run_id"] for r in listed] == [rid]
    assert listed[0]["status"] == "success"


async def test_run_kwargs_carry_the_authenticated_user(user1, tag):
    tid = await new_thread(user1, tag)
    run = await user1.runs.create(tid, GRAPH, input=user_input("hi"))
    await user1.runs.join(tid, run["run_id"])
    configurable = (await user1.runs.get(tid, run["run_id"]))["kwargs"]["config"]["configurable"]
    assert configurable["langgraph_auth_user"]["identity"] == "user1"
    assert configurable["langgraph_auth_user_id"] == "user1"


async def test_runs_list_is_newest_first(user1, tag):
    tid = await new_thread(user1, tag)
    first = await user1.runs.create(tid, GRAPH, input=user_input("one"))
    await user1.runs.join(tid, first["run_id"])
    second = await user1.runs.create(tid, GRAPH, input=user_input("two"))
    await user1.runs.join(tid, second["run_id"])
    listed = await user1.runs.list(tid)
    assert [r["run_id"] for r in listed] == [second["run_id"], first["run_id"]]


# ---------------------------------------------------------------------------------------
# runs.stream on a thread


async def test_stream_values(user1, tag):
    tid = await new_thread(user1, tag)
    created = []
    parts = await collect(
        user1.runs.stream(
            tid, GRAPH, input=user_input("hi"), stream_mode="values",
            on_run_created=created.append,
        )
    )
    events = [p.event for p in parts]
    assert events[0] == "metadata", events
    assert set(events[1:]) == {"values"}, events
    [meta] = created
    assert parts[0].data["run_id"] == meta["run_id"]
    assert_echo(parts[-1].data, "hi", "user1")
    # the stream closes only once the run has finished
    assert (await user1.runs.get(tid, meta["run_id"]))["status"] == "success"


async def test_stream_values_and_updates(user1, tag):
    tid = await new_thread(user1, tag)
    parts = await collect(
        user1.runs.stream(tid, GRAPH, input=user_input("hi"), stream_mode=["values", "updates"])
    )
    events = [p.event for p in parts]
    # As LangGraph's loop: the input's values, then the node's update, then the
    # state it made.
    assert events == ["metadata", "values", "updates", "values"], events

    values = [p.data for p in parts if p.event == "values"]
    assert_echo(values[-1], "hi", "user1")

    updates = [p.data for p in parts if p.event == "updates"]
    assert [list(u) for u in updates] == [["echo"]], updates
    echo = updates[0]["echo"]
    assert [m["type"] for m in echo["messages"]] == ["ai"]
    assert echo["messages"][0]["content"] == "hi"
    assert echo["seen_user"] == "user1"


# ---------------------------------------------------------------------------------------
# Stateless runs (no thread): allowed to reader too, which cannot create threads


@pytest.mark.parametrize("who", ["user1", "reader"])
async def test_stateless_wait_sees_the_caller(client, who):
    result = await client(who).runs.wait(None, GRAPH, input=user_input("hello"))
    assert_echo(result, "hello", who)


@pytest.mark.parametrize("who", ["user1", "reader"])
async def test_stateless_stream_sees_the_caller(client, who):
    parts = await collect(client(who).runs.stream(None, GRAPH, input=user_input("hello")))
    events = [p.event for p in parts]
    assert events[0] == "metadata", events
    assert "values" in events, events
    assert_echo([p.data for p in parts if p.event == "values"][-1], "hello", who)


# ---------------------------------------------------------------------------------------
# Isolation: user1's thread and runs are a 404 for user2


@pytest.fixture
async def user1_run(user1, tag) -> tuple[str, str]:
    tid = await new_thread(user1, tag)
    run = await user1.runs.create(tid, GRAPH, input=user_input("hi"))
    await user1.runs.join(tid, run["run_id"])
    return tid, run["run_id"]


# `runs.wait` and `runs.join` go through the SDK's reconnecting request, which raises a
# plain httpx.HTTPStatusError rather than the typed NotFoundError: check the status only.
ISOLATED = {
    "runs.wait": (False, lambda c, tid, rid: c.runs.wait(tid, GRAPH, input=user_input())),
    "runs.get": (True, lambda c, tid, rid: c.runs.get(tid, rid)),
    "runs.join": (False, lambda c, tid, rid: c.runs.join(tid, rid)),
    "runs.cancel": (True, lambda c, tid, rid: c.runs.cancel(tid, rid)),
    "runs.list": (True, lambda c, tid, rid: c.runs.list(tid)),
    "threads.get_state": (True, lambda c, tid, rid: c.threads.get_state(tid)),
}


@pytest.mark.parametrize("op", list(ISOLATED))
async def test_other_user_gets_404(user1_run, user2, op):
    typed, call = ISOLATED[op]
    tid, rid = user1_run
    with pytest.raises(httpx.HTTPStatusError) as info:
        await call(user2, tid, rid)
    assert info.value.response.status_code == 404, info.value.response.text
    assert "detail" in info.value.response.json()
    if typed:
        assert isinstance(info.value, NotFoundError), type(info.value)


async def test_other_user_cannot_stream_on_the_thread(user1_run, user2):
    tid, _ = user1_run
    await expect_error(collect(user2.runs.stream(tid, GRAPH, input=user_input())), 404)


async def test_other_user_leaves_the_thread_untouched(user1_run, user1, user2):
    tid, rid = user1_run
    for _, call in ISOLATED.values():
        with pytest.raises(httpx.HTTPStatusError):
            await call(user2, tid, rid)
    state = await user1.threads.get_state(tid)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
    assert [r["run_id"] for r in await user1.runs.list(tid)] == [rid]
    assert (await user1.runs.get(tid, rid))["status"] == "success"


async def test_a_run_is_reached_only_through_its_own_thread(user1, user2, tag):
    """Another user's pending run, named under one's own thread, is a 404 (`Run not found`
    for the delete, as `langgraph dev` answers), and the run is left as it was."""
    theirs = await new_thread(user2, tag)
    run = await user2.runs.create(theirs, GRAPH, input=user_input(), after_seconds=3600)
    rid = run["run_id"]
    own = await new_thread(user1, tag)
    await expect_error(user1.runs.delete(own, rid), 404, "Run not found")
    await expect_error(user1.runs.get(own, rid), 404)
    await expect_error(user1.runs.cancel(own, rid), 404)
    assert (await user2.runs.get(theirs, rid))["status"] == "pending"
    await user2.runs.cancel(theirs, rid)


# ---------------------------------------------------------------------------------------
# Spoofing the identity through config.configurable


SPOOF = {"configurable": {"langgraph_auth_user_id": "user1", "langgraph_auth_user": {"identity": "user1"}}}


async def test_spoofed_identity_in_config_is_ignored(user2, tag):
    tid = await new_thread(user2, tag)
    result = await user2.runs.wait(tid, GRAPH, input=user_input("hi"), config=SPOOF)
    assert result["seen_user"] == "user2"


async def test_spoofed_identity_is_not_stored_in_the_run(user2, tag):
    tid = await new_thread(user2, tag)
    run = await user2.runs.create(tid, GRAPH, input=user_input("hi"), config=SPOOF)
    await user2.runs.join(tid, run["run_id"])
    configurable = (await user2.runs.get(tid, run["run_id"]))["kwargs"]["config"]["configurable"]
    assert configurable["langgraph_auth_user_id"] == "user2"
    assert configurable["langgraph_auth_user"]["identity"] == "user2"


async def test_configurable_user_id_is_the_callers_identity(user2, tag, is_warden):
    """Warden sets `configurable.user_id` to the caller's identity, for the graph and the
    checkpoints' metadata; `langgraph dev` lets the client choose it."""
    tid = await new_thread(user2, tag)
    config = {"configurable": {"user_id": "user1"}}
    await user2.runs.wait(tid, GRAPH, input=user_input("hi"), config=config)
    [run] = await user2.runs.list(tid)
    expected = "user2" if is_warden else "user1"
    assert run["kwargs"]["config"]["configurable"]["user_id"] == expected, run
    history = await user2.threads.get_history(tid, limit=10)
    assert {c["metadata"]["user_id"] for c in history} == {expected}, history


# ---------------------------------------------------------------------------------------
# Several runs on one thread; history


async def test_second_wait_appends(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("one"))
    result = await user1.runs.wait(tid, GRAPH, input=user_input("two"))
    messages = result["messages"]
    assert [(m["type"], m["content"]) for m in messages] == [
        ("human", "one"), ("ai", "one"), ("human", "two"), ("ai", "two"),
    ]
    assert result["seen_user"] == "user1"


async def test_history_is_newest_first(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("one"))
    final = await user1.runs.wait(tid, GRAPH, input=user_input("two"))

    history = await user1.threads.get_history(tid)
    assert len(history) >= 2, history
    created = [datetime.fromisoformat(s["created_at"]) for s in history]
    assert created == sorted(created, reverse=True), created
    newest = history[0]
    assert newest["next"] == []
    assert newest["values"] == final
    current = await user1.threads.get_state(tid)
    assert newest["checkpoint"]["checkpoint_id"] == current["checkpoint"]["checkpoint_id"]


async def test_prune_keep_latest_keeps_the_thread_and_its_latest_state(user1, tag, is_warden):
    """`threads.prune(strategy="keep_latest")`: old checkpoints go, the thread and its
    current state stay. (langgraph dev's in-memory runtime refuses this strategy with a
    422; Warden keeps checkpoints in SQLite and prunes them.)"""
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("one"))
    if not is_warden:
        await expect_error(
            user1.threads.prune([tid], strategy="keep_latest"),
            422,
            "keep_latest strategy is not supported in in-memory runtime",
        )
        return
    final = await user1.runs.wait(tid, GRAPH, input=user_input("two"))
    before = await user1.threads.get_state(tid)
    assert len(await user1.threads.get_history(tid)) >= 2

    assert await user1.threads.prune([tid], strategy="keep_latest") == {"pruned_count": 1}
    history = await user1.threads.get_history(tid)
    assert len(history) == 1, history
    assert history[0]["values"] == final
    after = await user1.threads.get_state(tid)
    assert after["checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert after["values"] == final

    assert await user1.threads.prune([tid]) == {"pruned_count": 1}
    await expect_error(user1.threads.get(tid), 404)


async def test_thread_stream_follows_runs_started_after_joining(user1, user2, tag):
    """`threads.join_stream`: the thread's runs to come, each event with an id, each
    run closed by `metadata` `run_done`; another owner's thread is a stream of one
    error event (a 404 met once the stream has begun, as the reference sends it)."""
    import asyncio

    tid = await new_thread(user1, tag)
    refused = await _first(user2.threads.join_stream(tid))
    assert (refused.event, refused.data) == (
        "error",
        {"error": "HTTPException", "message": "404: Thread not found"},
    )

    parts = []

    async def follow():
        async for part in await user1.threads.join_stream(tid):
            parts.append(part)
            if part.event == "metadata" and part.data.get("status") == "run_done":
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.3)  # the stream is open before the run starts
    run = await user1.runs.create(tid, GRAPH, input=user_input("hello"))
    await asyncio.wait_for(follower, timeout=30)

    rid = run["run_id"]
    assert parts[0].event == "metadata" and parts[0].data["run_id"] == rid, parts
    assert parts[-1].data == {"status": "run_done", "run_id": rid}
    values = [p.data for p in parts if p.event == "values"]
    assert values and values[-1]["messages"][-1]["content"] == "hello", parts
    assert all(p.id for p in parts), parts


async def _first(joining):
    """The first part of a stream that `joining` (an SDK coroutine) opens."""
    async for part in await joining:
        return part


# ---------------------------------------------------------------------------------------
# Graph and schemas of the system assistant


async def test_get_graph(user1):
    graph = await user1.assistants.get_graph(GRAPH)
    assert {n["id"] for n in graph["nodes"]} == {"__start__", "echo", "__end__"}
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        ("__start__", "echo"), ("echo", "__end__"),
    }


async def test_get_subgraphs(user1):
    # A graph without subgraphs, with or without a namespace.
    assert await user1.assistants.get_subgraphs(SYSTEM_AGENT_ID) == {}
    assert await user1.assistants.get_subgraphs(SYSTEM_AGENT_ID, namespace="x", recurse=True) == {}
    await expect_error(
        user1.assistants.get_subgraphs("00000000-0000-4000-8000-000000000000"), 404, "Not Found"
    )


async def test_get_schemas(user1):
    schemas = await user1.assistants.get_schemas(SYSTEM_AGENT_ID)
    assert isinstance(schemas, dict)
    assert schemas["graph_id"] == GRAPH


# ---------------------------------------------------------------------------------------
# Cancel


async def test_cancel_of_a_finished_run_is_404(user1_run, user1):
    tid, rid = user1_run
    body = await expect_error(user1.runs.cancel(tid, rid), 404)
    assert body["detail"].startswith("No matching runs to cancel"), body
    assert (await user1.runs.get(tid, rid))["status"] == "success"


# ---------------------------------------------------------------------------------------
# threads.update_state goes through the graph's reducers


async def test_update_state_appends_messages_through_the_reducer(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    await user1.threads.update_state(
        tid, {"messages": [{"role": "user", "content": "added"}]}, as_node="echo"
    )
    state = await user1.threads.get_state(tid)
    contents = [m["content"] for m in state["values"]["messages"]]
    assert contents == ["hi", "hi", "added"], state
    assert state["values"]["messages"][-1]["type"] == "human"
    assert state["metadata"]["source"] == "update"


async def test_history_steps_count_on_across_runs(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("one"))
    await user1.runs.wait(tid, GRAPH, input=user_input("two"))
    history = await user1.threads.get_history(tid, limit=10)
    steps = [c["metadata"]["step"] for c in history]
    assert steps == sorted(steps, reverse=True), steps
    assert len(set(steps)) == len(steps), steps


async def test_copy_keeps_the_state_and_history(user1, tag):
    tid = await new_thread(user1, tag)
    result = await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    copy = await user1.threads.copy(tid)
    assert copy["thread_id"] != tid
    state = await user1.threads.get_state(copy["thread_id"])
    assert state["values"] == result
    history = await user1.threads.get_history(copy["thread_id"], limit=10)
    assert len(history) >= 2


async def test_deleting_a_run_keeps_a_copys_history(user1, tag):
    """The copy holds checkpoints of the source's run: deleting that run on the source
    leaves them."""
    tid = await new_thread(user1, tag)
    result = await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    [run] = await user1.runs.list(tid)
    copy = (await user1.threads.copy(tid))["thread_id"]
    before = await user1.threads.get_history(copy, limit=10)
    await user1.runs.delete(tid, run["run_id"])
    assert await user1.threads.get_history(copy, limit=10) == before
    assert (await user1.threads.get_state(copy))["values"] == result


# ---------------------------------------------------------------------------------------
# Breakpoints: a run pauses before or after a node, and a run with no input goes on


async def test_interrupt_before_pauses_the_run_before_the_node(user1, tag):
    tid = await new_thread(user1, tag)
    paused = await user1.runs.wait(tid, GRAPH, input=user_input("hi"), interrupt_before=["echo"])
    assert [m["type"] for m in paused["messages"]] == ["human"], paused
    assert "__interrupt__" not in paused
    state = await user1.threads.get_state(tid)
    assert state["next"] == ["echo"]
    assert [t["name"] for t in state["tasks"]] == ["echo"]
    thread = await user1.threads.get(tid)
    assert thread["status"] == "interrupted"
    (run,) = await user1.runs.list(tid)
    assert run["status"] == "success"

    done = await user1.runs.wait(tid, GRAPH, input=None)
    assert_echo(done, "hi", "user1")
    assert (await user1.threads.get_state(tid))["next"] == []
    assert (await user1.threads.get(tid))["status"] == "idle"


async def test_interrupt_before_streams_an_empty_interrupt_update(user1, tag):
    tid = await new_thread(user1, tag)
    parts = await collect(
        user1.runs.stream(
            tid, GRAPH, input=user_input("hi"), interrupt_before="*", stream_mode=["updates"]
        )
    )
    assert [(p.event, p.data) for p in parts][-1] == ("updates", {"__interrupt__": []})


# ---------------------------------------------------------------------------------------
# Time travel: a run, or a state update, from a past checkpoint starts a new branch


async def paused_before_echo(who, tid: str) -> dict:
    """The checkpoint of `tid` that has `echo` still to run."""
    history = await who.threads.get_history(tid, limit=20)
    (checkpoint,) = [c for c in history if c["next"] == ["echo"]]
    return checkpoint


async def test_a_run_from_a_past_checkpoint_replays_from_there(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    before = await user1.threads.get_history(tid, limit=20)
    past = await paused_before_echo(user1, tid)

    replayed = await user1.runs.wait(tid, GRAPH, input=None, checkpoint_id=past["checkpoint_id"])
    assert [m["type"] for m in replayed["messages"]] == ["human", "ai"], replayed
    assert_echo(replayed, "hi", "user1")
    after = await user1.threads.get_history(tid, limit=20)
    assert len(after) > len(before)
    # The old branch is kept; the new one hangs off the past checkpoint.
    assert {c["checkpoint_id"] for c in before} <= {c["checkpoint_id"] for c in after}
    by_id = {c["checkpoint_id"]: c for c in after}
    node = after[0]
    while node["checkpoint_id"] != past["checkpoint_id"]:
        assert node["parent_checkpoint_id"], node
        node = by_id[node["parent_checkpoint_id"]]


async def test_a_state_update_on_a_past_checkpoint_branches_from_it(user1, tag):
    tid = await new_thread(user1, tag)
    await user1.runs.wait(tid, GRAPH, input=user_input("hi"))
    past = await paused_before_echo(user1, tid)
    await user1.threads.update_state(
        tid, {"messages": [{"role": "user", "content": "edited"}]},
        checkpoint_id=past["checkpoint_id"],
    )
    state = await user1.threads.get_state(tid)
    assert state["parent_checkpoint"]["checkpoint_id"] == past["checkpoint_id"]
    assert state["metadata"]["source"] == "update"
    assert [m["content"] for m in state["values"]["messages"]] == ["hi", "edited"]


async def test_tasks_and_checkpoints_stream_the_steps(user1, tag):
    """`tasks` and `checkpoints`: what both servers send for the echo step (LangGraph also
    sends a checkpoint of the bare input first, which Warden does not have)."""
    tid = await new_thread(user1, tag)
    parts = await collect(
        user1.runs.stream(tid, GRAPH, input=user_input("hi"), stream_mode=["tasks", "checkpoints"])
    )
    parts = [p for p in parts if p.event != "metadata"]
    tail = parts[-4:]
    assert [p.event for p in tail] == ["checkpoints", "tasks", "tasks", "checkpoints"], parts
    before, start, result, after = (p.data for p in tail)
    assert before["next"] == ["echo"] and after["next"] == []
    for checkpoint in (before, after):
        assert {"config", "parent_config", "values", "metadata", "next", "tasks"} <= set(checkpoint)
    assert [t["name"] for t in before["tasks"]] == ["echo"]
    assert after["parent_config"]["configurable"]["checkpoint_id"] == (
        before["config"]["configurable"]["checkpoint_id"]
    )
    assert {"id", "name", "input", "triggers"} <= set(start)
    assert {"id", "name", "error", "result", "interrupts"} <= set(result)
    assert start["name"] == result["name"] == "echo"
    assert start["id"] == result["id"] == before["tasks"][0]["id"]
    assert start["input"] == before["values"]
    assert result["error"] is None and result["interrupts"] == []
    assert result["result"]["seen_user"] == "user1"
    history = await user1.threads.get_history(tid, limit=20)
    ids = {s["checkpoint"]["checkpoint_id"] for s in history}
    streamed = [p.data["config"]["configurable"]["checkpoint_id"] for p in parts if p.event == "checkpoints"]
    assert set(streamed) <= ids
    assert streamed[-1] == history[0]["checkpoint"]["checkpoint_id"]
