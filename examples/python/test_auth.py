"""The reference policy's handlers under plain pytest: no build needed."""

import pytest

from auth import auth
from warden_auth import HTTPException
from warden_auth import runtime


def login(token):
    return runtime.authenticate(auth, "GET", "/threads", headers=[("authorization", f"Bearer {token}")])


def test_tokens_authenticate_to_their_users():
    user = login("user1-token")
    assert user["identity"] == "user1"
    assert user["display_name"] == "Alice"
    assert "threads:create" in user["permissions"]


@pytest.mark.parametrize("header", [None, "Basic user1-token", "Bearer nope", "Bearer "])
def test_bad_credentials_are_401(header):
    headers = [] if header is None else [("authorization", header)]
    with pytest.raises(HTTPException) as error:
        runtime.authenticate(auth, "GET", "/threads", headers=headers)
    assert error.value.status_code == 401


def test_thread_create_stamps_the_owner_over_a_spoof():
    value = {"metadata": {"owner": "user2", "topic": "x"}}
    decision, change = runtime.authorize(auth, login("user1-token"), "threads", "create", value)
    assert decision == ("filter", [("owner", "eq", "user1")])
    assert change == runtime.Change("stamps", stamps=[("owner", "user1")])


def test_reader_cannot_create_threads():
    with pytest.raises(HTTPException) as error:
        runtime.authorize(auth, login("reader-token"), "threads", "create", {})
    assert (error.value.status_code, error.value.detail) == (403, "Missing permission: threads:create")


def test_reads_are_filtered_to_the_owner_unchanged():
    decision, change = runtime.authorize(auth, login("user2-token"), "threads", "read", {"thread_id": "t"})
    assert decision == ("filter", [("owner", "eq", "user2")])
    assert change.kind == "none"


def test_assistants_writes_are_admin_only_and_reads_open():
    with pytest.raises(HTTPException) as error:
        runtime.authorize(auth, login("user1-token"), "assistants", "create", {})
    assert error.value.status_code == 403
    decision, _ = runtime.authorize(auth, login("user1-token"), "assistants", "search", {})
    assert decision == ("allow", None)
    decision, change = runtime.authorize(auth, login("admin-token"), "assistants", "create", {"graph_id": "agent"})
    assert decision == ("allow", None)
    assert change == runtime.Change("stamps", stamps=[("owner", "admin")])


def test_store_namespace_must_start_with_the_identity():
    user = login("user1-token")
    assert runtime.authorize(auth, user, "store", "put", {"namespace": ["user1", "notes"]})[0] == ("allow", None)
    with pytest.raises(HTTPException) as error:
        runtime.authorize(auth, user, "store", "get", {"namespace": ["user2"]})
    assert error.value.status_code == 403
