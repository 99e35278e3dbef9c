"""The `Auth` API and the runtime that runs it, natively."""

import pytest

from warden_auth import Auth, HTTPException, runtime


def test_the_most_specific_handler_wins():
    auth = Auth()

    @auth.on
    async def every(ctx, value):
        return {"who": "global"}

    @auth.on.threads
    async def threads(ctx, value):
        return {"who": "threads"}

    @auth.on.threads.create
    async def create(ctx, value):
        return {"who": "threads.create"}

    @auth.on(actions="read")
    async def reads(ctx, value):
        return {"who": "*.read"}

    def who(resource, action):
        (kind, clauses), _ = runtime.authorize(auth, {"identity": "u"}, resource, action, {})
        return clauses[0][2]

    assert who("threads", "create") == "threads.create"
    assert who("threads", "read") == "threads"
    assert who("assistants", "read") == "*.read"
    assert who("crons", "delete") == "global"


def test_registering_twice_or_an_unknown_action_is_refused():
    auth = Auth()

    @auth.on.threads.create
    async def one(ctx, value):
        return None

    with pytest.raises(ValueError):
        auth.on.threads.create(one)
    with pytest.raises(ValueError):
        auth.on.threads(actions="put")(one)
    with pytest.raises(ValueError):
        auth.on(resources="runs")(one)


def test_authenticate_gets_what_it_asks_for_by_name():
    auth = Auth()
    seen = {}

    @auth.authenticate
    def authenticate(headers, path, method, query_params):
        seen.update(headers=headers, path=path, method=method, query=query_params)
        return "user1"

    user = runtime.authenticate(auth, "POST", "/runs", [("a", "1")], [("X-Api-Key", "k")])
    assert user == {"identity": "user1"}
    assert seen == {"headers": {b"x-api-key": b"k"}, "path": "/runs", "method": "POST", "query": {"a": "1"}}
    assert auth.headers_read() is None


def test_an_authorization_only_authenticate_registers_that_header():
    auth = Auth()

    @auth.authenticate
    async def authenticate(authorization):
        if authorization != "Bearer ok":
            raise HTTPException(detail="no")
        return {"identity": "u", "permissions": ("a",), "org": "o"}

    assert auth.headers_read() == ["authorization"]
    user = runtime.authenticate(auth, "GET", "/", headers=[("Authorization", "Bearer ok")])
    assert user == {"identity": "u", "permissions": ["a"], "org": "o"}
    with pytest.raises(HTTPException) as error:
        runtime.authenticate(auth, "GET", "/", headers=[])
    assert (error.value.status_code, error.value.detail) == (401, "no")


def test_results_become_decisions():
    assert runtime.decision(None) == ("allow", None)
    assert runtime.decision(True) == ("allow", None)
    assert runtime.decision(False) == ("deny", None)
    assert runtime.decision({"tags": {"$contains": "a"}, "owner": {"$eq": 3}}) == (
        "filter",
        [("tags", "contains", "a"), ("owner", "eq", 3)],
    )
    assert runtime.decision({"$or": [{"a": 1}, {"b": 2, "c": 3}]}) == (
        "filter",
        [("any_of", [[("a", "eq", 1)], [("b", "eq", 2), ("c", "eq", 3)]])],
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"k": {"$ne": 1}},
        {"k": {"$eq": 1, "$contains": 2}},
        {"$or": [{"a": 1}]},
        {"$or": [{"$or": [{"a": 1}, {"b": 1}]}, {"c": 1}]},
        {"$where": "1"},
    ],
)
def test_invalid_filters_fail_rather_than_allow(bad):
    with pytest.raises(ValueError):
        runtime.decision(bad)


def test_a_returned_string_is_not_a_decision():
    with pytest.raises(TypeError):
        runtime.decision("yes")


def test_changes_are_stamps_when_only_metadata_keys_are_set():
    change = runtime.Change.between
    assert change({"metadata": {"a": 1}}, {"metadata": {"a": 1}}).kind == "none"
    assert change({}, {"metadata": {"owner": "u"}}) == runtime.Change("stamps", stamps=[("owner", "u")])
    assert change({"metadata": {"a": 1, "b": 2}}, {"metadata": {"a": 1, "b": 3}}).stamps == [("b", 3)]
    assert change({"metadata": {"a": 1}}, {"metadata": {}}).kind == "value"
    assert change({"name": "x"}, {"name": "y"}).kind == "value"
    assert change({"namespace": ["a"]}, {"namespace": ["b"]}).value == {"namespace": ["b"]}


def test_an_awaiting_handler_is_an_error_not_an_allow():
    import asyncio

    auth = Auth()

    @auth.on
    async def sleepy(ctx, value):
        await asyncio.sleep(0.01)
        return None

    with pytest.raises(RuntimeError):
        runtime.authorize(auth, {"identity": "u"}, "threads", "read", {})


def test_ctx_carries_the_user_and_event():
    auth = Auth()
    seen = []

    @auth.on.store
    def store(ctx, value):
        seen.append((ctx.user.identity, ctx.user["org"], ctx.user.display_name, ctx.permissions, ctx.resource, ctx.action))

    runtime.authorize(auth, {"identity": "u", "org": "o", "permissions": ["p"]}, "store", "list_namespaces", {})
    assert seen == [("u", "o", "u", ["p"], "store", "list_namespaces")]
