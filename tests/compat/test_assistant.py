"""``examples/assistant`` driven by the unmodified ``langgraph_sdk`` client: a chat agent
whose graph calls a model (the scripted ``FakeModel``) over its allowed hosts, streams the
answer token by token and asks a human before it sends an e-mail."""
from __future__ import annotations


import httpx
import pytest

from compat_helpers import TOKENS, make_client
from fake_model import hang, tokens, tool_call

GRAPH = "assistant"


def ask(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
async def users(assistant):
    url, model = assistant
    made = [make_client(url, TOKENS["user1"]), make_client(url, TOKENS["user2"])]
    yield made[0], made[1], model
    for c in made:
        await c.aclose()


async def test_tokens_arrive_as_messages_tuple_chunks_before_the_run_ends(users):
    user1, _, model = users
    thread = await user1.threads.create()
    model.answer(tokens("Hel", "lo", " there"))
    gate = model.hold_next()

    seen: list[tuple[str, object]] = []
    stream = user1.runs.stream(thread["thread_id"], GRAPH, input=ask("hi"),
                               stream_mode="messages-tuple")
    async for part in stream:
        seen.append((part.event, part.data))
        if part.event == "messages" and part.data[0]["content"] == "Hel":
            # The model holds the rest of its answer: the run is still going.
            assert (await user1.threads.get(thread["thread_id"]))["status"] == "busy"
            gate.set()
    chunks = [data for event, data in seen if event == "messages"]
    assert "".join(m["content"] for m, _ in chunks) == "Hello there"
    assert {m["type"] for m, _ in chunks} == {"AIMessageChunk"}
    assert len({m["id"] for m, _ in chunks}) == 1
    assert {meta["langgraph_node"] for _, meta in chunks} == {"agent"}

    state = await user1.threads.get_state(thread["thread_id"])
    answer = state["values"]["messages"][-1]
    assert (answer["type"], answer["content"]) == ("ai", "Hello there")
    assert answer["id"] == chunks[0][0]["id"]
    assert model.requests[-1]["messages"][-1] == {"role": "user", "content": "hi"}


async def test_a_tool_call_pauses_for_approval_and_a_resume_sends_it(users):
    user1, user2, model = users
    thread = await user1.threads.create()
    tid = thread["thread_id"]
    args = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon?"}
    model.answer(tool_call("send_email", args, "call_1"))

    paused = await user1.runs.wait(tid, GRAPH, input=ask("Ask Bob to lunch"))
    (question,) = paused["__interrupt__"]
    assert question["value"]["tool_call"]["args"] == args
    assert (await user1.threads.get(tid))["status"] == "interrupted"
    assert (await user1.threads.get_state(tid))["next"] == ["tools"]

    # Another user cannot answer it. (`runs.wait` raises httpx's error, not the SDK's.)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await user2.runs.wait(tid, GRAPH, command={"resume": True})
    assert refused.value.response.status_code == 404

    model.answer(tokens("Done", "."))
    done = await user1.runs.wait(tid, GRAPH, command={"resume": True})
    assert [(m["type"], m["content"]) for m in done["messages"][2:]] == [
        ("tool", "Sent to bob@example.com."),
        ("ai", "Done."),
    ]
    assert done["sent"] == [args]
    assert (await user1.threads.get(tid))["status"] == "idle"


async def test_a_model_off_the_allowlist_is_an_error_the_graph_sees(users):
    user1, _, model = users
    thread = await user1.threads.create()
    before = len(model.requests)
    with pytest.raises(Exception) as failed:
        await user1.runs.wait(thread["thread_id"], "assistant_offlist", input=ask("hi"))
    assert "PermissionDeniedError" in str(failed.value)
    assert "allowed_hosts" in str(failed.value)
    (run,) = await user1.runs.list(thread["thread_id"])
    assert run["status"] == "error"
    assert len(model.requests) == before, "the request never left"


async def test_a_hanging_model_ends_the_run_at_its_deadline(users):
    user1, _, model = users
    thread = await user1.threads.create()
    model.answer(hang())
    with pytest.raises(Exception) as failed:
        await user1.runs.wait(thread["thread_id"], "assistant_hurried", input=ask("hi"))
    assert "Timeout" in str(failed.value) or "deadline" in str(failed.value)
    (run,) = await user1.runs.list(thread["thread_id"])
    assert run["status"] == "error"
    assert (await user1.threads.get(thread["thread_id"]))["status"] == "error"
