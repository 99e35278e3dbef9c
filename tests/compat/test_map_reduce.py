"""Map-reduce with ``Send`` (``tests/fixtures/fanout-graph``) driven by the unmodified
``langgraph_sdk`` client: a router sends one ``write`` task per subject, each on its own
input; one that asks a human pauses the step while the others keep what they returned."""
from __future__ import annotations

import httpx
import pytest

from compat_helpers import TOKENS, make_client
from langgraph_sdk.schema import Command, Send

GRAPH = "fanout"


@pytest.fixture
async def users(fanout):
    made = [make_client(fanout, TOKENS["user1"]), make_client(fanout, TOKENS["user2"])]
    yield made[0], made[1]
    for c in made:
        await c.aclose()


async def updates(stream) -> list:
    return [part.data async for part in stream if part.event == "updates"]


async def test_one_task_per_subject_each_on_its_own_input(users):
    user1, _ = users
    thread = (await user1.threads.create())["thread_id"]
    seen = await updates(user1.runs.stream(
        thread, GRAPH, input={"subjects": ["cats", "dogs"]}, stream_mode="updates"))
    assert seen == [
        {"plan": {"subjects": ["cats", "dogs"]}},
        {"write": {"jokes": ["joke about cats"]}},
        {"write": {"jokes": ["joke about dogs"]}},
        {"collect": {"count": 2}},
    ]
    history = await user1.threads.get_history(thread, limit=10)
    after_plan = next(c for c in history if c["next"] == ["write", "write"])
    assert [t["path"] for t in after_plan["tasks"]] == [
        ["__pregel_push", 0, False], ["__pregel_push", 1, False]]


async def test_a_task_that_asks_pauses_alone_and_only_its_owner_resumes_it(users):
    user1, user2 = users
    thread = (await user1.threads.create())["thread_id"]
    seen = await updates(user1.runs.stream(
        thread, GRAPH, input={"subjects": ["cats", "ask", "owls"]}, stream_mode="updates"))
    assert seen[1:3] == [{"write": {"jokes": ["joke about cats"]}},
                         {"write": {"jokes": ["joke about owls"]}}]
    [asked] = seen[3]["__interrupt__"]
    assert asked["value"] == {"question": "which joke about ask?"}

    state = await user1.threads.get_state(thread)
    assert state["next"] == ["write"]
    assert [t["result"] for t in state["tasks"]] == [
        {"jokes": ["joke about cats"]}, None, {"jokes": ["joke about owls"]}]
    assert (await user1.threads.get(thread))["status"] == "interrupted"

    with pytest.raises(httpx.HTTPStatusError) as refused:
        await user2.runs.wait(thread, GRAPH, command=Command(resume="stolen"))
    assert refused.value.response.status_code == 404

    seen = await updates(user1.runs.stream(
        thread, GRAPH, command=Command(resume="my own joke"), stream_mode="updates"))
    assert seen == [
        {"write": {"jokes": ["joke about cats"]}, "__metadata__": {"cached": True}},
        {"write": {"jokes": ["my own joke"]}},
        {"write": {"jokes": ["joke about owls"]}, "__metadata__": {"cached": True}},
        {"collect": {"count": 3}},
    ]
    values = (await user1.threads.get_state(thread))["values"]
    assert values["jokes"] == ["joke about cats", "my own joke", "joke about owls"]


async def test_a_command_sends_a_task_on_its_own_input(users):
    user1, _ = users
    thread = (await user1.threads.create())["thread_id"]
    await user1.runs.wait(thread, GRAPH, input={"subjects": ["cats"]})
    done = await user1.runs.wait(
        thread, GRAPH, command=Command(goto=Send(node="write", input={"subject": "bats"})))
    assert done["jokes"] == ["joke about cats", "joke about bats"]
    assert done["count"] == 2
