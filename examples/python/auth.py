"""Reference auth policy for the LangGraph Agent Server conformance suite.

Tokens (Authorization: Bearer <token>):
  user1-token  -> identity "user1"  (Alice)   threads:create + read/write
  user2-token  -> identity "user2"  (Bob)     threads:create + read/write
  admin-token  -> identity "admin"  (Admin)   everything + "admin"
  reader-token -> identity "reader" (Reader)  NO threads:create
Anything else (missing header, non-Bearer scheme, unknown token) -> 401.

Authorization:
  @auth.on (global)            create/create_run/update: stamp metadata.owner = identity
                               (create_run too, so the temporary thread of a stateless
                               run is owned by the caller); every action: return filter
                               {"owner": identity}
  @auth.on.threads.create      require "threads:create" (else 403), then as global
  @auth.on.assistants          create/update/delete: admin only (else 403);
                               read/search: any authenticated user, no filter
  @auth.on.store               namespace[0] must equal identity (else 403)
"""
from __future__ import annotations

from typing import Any, Optional

from warden_auth import Auth

auth = Auth()

_BASE = ["threads:read", "threads:write", "runs:create", "store:read", "store:write"]

USERS: dict[str, dict[str, Any]] = {
    "user1-token": {
        "identity": "user1",
        "display_name": "Alice",
        "permissions": ["threads:create", *_BASE],
    },
    "user2-token": {
        "identity": "user2",
        "display_name": "Bob",
        "permissions": ["threads:create", *_BASE],
    },
    "admin-token": {
        "identity": "admin",
        "display_name": "Admin",
        "permissions": ["threads:create", *_BASE, "assistants:write", "admin"],
    },
    "reader-token": {
        "identity": "reader",
        "display_name": "Reader",
        "permissions": ["threads:read", "store:read", "store:write"],
    },
}


def _unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=401, detail=detail)


@auth.authenticate
async def authenticate(authorization: Optional[str]) -> Auth.types.MinimalUserDict:
    if not authorization:
        raise _unauthorized("Missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Invalid Authorization scheme; expected Bearer")
    user = USERS.get(token.strip())
    if user is None:
        raise _unauthorized("Invalid token")
    return {
        "identity": user["identity"],
        "display_name": user["display_name"],
        "permissions": list(user["permissions"]),
        "is_authenticated": True,
    }


def _is_admin(ctx: Auth.types.AuthContext) -> bool:
    return "admin" in (ctx.permissions or [])


def _stamp_owner(ctx: Auth.types.AuthContext, value: Any) -> None:
    if isinstance(value, dict):
        metadata = value.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
            value["metadata"] = metadata
        metadata["owner"] = ctx.user.identity


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    if ctx.action in ("create", "create_run", "update"):
        _stamp_owner(ctx, value)
    return {"owner": ctx.user.identity}


@auth.on.threads.create
async def threads_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create.value
) -> Auth.types.FilterType:
    if "threads:create" not in (ctx.permissions or []):
        raise Auth.exceptions.HTTPException(
            status_code=403, detail="Missing permission: threads:create"
        )
    _stamp_owner(ctx, value)
    return {"owner": ctx.user.identity}


@auth.on.assistants
async def assistants(ctx: Auth.types.AuthContext, value: Any) -> None:
    if ctx.action in ("create", "update", "delete"):
        if not _is_admin(ctx):
            raise Auth.exceptions.HTTPException(
                status_code=403, detail="Only admin may modify assistants"
            )
        if ctx.action == "create":
            _stamp_owner(ctx, value)
    # read / search: any authenticated user, unfiltered
    return None


@auth.on.store
async def store(ctx: Auth.types.AuthContext, value: Any) -> None:
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        raise Auth.exceptions.HTTPException(
            status_code=403,
            detail="Store namespace must start with the caller's identity",
        )
    return None
