"""Assertions shared by the compatibility tests."""
from __future__ import annotations

from typing import Any, Awaitable, Optional

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)

# Tokens of the reference policy (/work/shared/reference/src/security/auth.py).
TOKENS = {
    "user1": "user1-token",
    "user2": "user2-token",
    "admin": "admin-token",
    "reader": "reader-token",
}

# The id of the system assistant the server registers for graph "agent":
# uuid5(6ba7b821-9dad-11d1-80b4-00c04fd430c8, "agent").
SYSTEM_AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"

# What `langgraph_sdk` raises for each status (all are httpx.HTTPStatusError).
SDK_ERRORS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
}

MISSING_PERMISSION = "Missing permission: threads:create"
ADMIN_ONLY = "Only admin may modify assistants"
STORE_DENIED = "Store namespace must start with the caller's identity"


def make_client(url: str, token: Optional[str] = None, **headers: str):
    """An unmodified langgraph_sdk async client, as the custom-auth tutorials build it."""
    if token is not None:
        headers = {"Authorization": f"Bearer {token}", **headers}
    # api_key=None: never pick up a LangSmith key from the environment.
    return get_client(url=url, api_key=None, headers=headers)


async def expect_error(
    awaitable: Awaitable[Any], status: int, detail: Optional[str] = None
) -> Any:
    """Await an SDK call that must fail with `status` (and `{"detail": detail}`).
    Returns the decoded error body."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        await awaitable
    err = info.value
    body_text = err.response.text
    assert err.response.status_code == status, (
        f"expected {status}, got {err.response.status_code}: {body_text}"
    )
    if status in SDK_ERRORS:
        assert isinstance(err, SDK_ERRORS[status]), type(err)
    try:
        body = err.response.json()
    except ValueError:
        pytest.fail(f"{status} body is not JSON: {body_text!r}")
    if detail is not None:
        assert isinstance(body, dict) and body.get("detail") == detail, body
    return body
