"""The component's exports (`warden:auth/handlers@0.2.0`) over a policy's
`Auth`: only imported inside the component, where `wit_world` exists.

`warden build` generates the two modules componentize-py looks for: the
app (`warden_auth_app`: imports the policy, calls `install`, exposes
`WardenAuthExports`) and `warden_auth_exports` (exposes `Session`)."""

from __future__ import annotations

import json
import traceback
from typing import Any, Dict, List, Optional

from componentize_py_types import Err
from wit_world.imports import log as _log

try:  # built for `auth-plugin-python` (the contract's world and wasi:http)
    from wit_world.imports import warden_auth_types as t
except ImportError:  # built for the contract's world alone
    from wit_world.imports import types as t  # type: ignore[no-redef]

from . import runtime
from .auth import Auth
from .exceptions import HTTPException

_auth: Optional[Auth] = None

_RESOURCE_OF_EVENT = {
    t.Event_Threads: "threads",
    t.Event_Assistants: "assistants",
    t.Event_Crons: "crons",
    t.Event_Store: "store",
}
_EVENT_OF_RESOURCE = {
    "threads": (t.Event_Threads, t.ThreadAction),
    "assistants": (t.Event_Assistants, t.AssistantAction),
    "crons": (t.Event_Crons, t.CronAction),
    "store": (t.Event_Store, t.StoreAction),
}
_OPERATORS = {"eq": t.Operator.EQ, "contains": t.Operator.CONTAINS}


def install(auth: Any) -> None:
    """Serves `auth`'s handlers from this component."""
    global _auth
    if not isinstance(auth, Auth):
        raise TypeError(f"the policy object is a {type(auth).__name__}, not a warden_auth.Auth")
    _auth = auth


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _http_error(error: HTTPException) -> Err:
    headers = [(str(k), str(v)) for k, v in (error.headers or {}).items()]
    return Err(t.HttpError(int(error.status_code), error.detail, headers))


def _fault(what: str) -> None:
    """Logs the handler's exception; the caller re-raises it, which traps
    the instance: the host answers 500 and nothing is allowed."""
    _log.log(_log.Level.ERROR, f"{what} raised", [("traceback", traceback.format_exc())])


def _handler_key(resource: str, action: str) -> Any:
    if resource == "*" and action == "*":
        return t.HandlerKey_Global()
    if action == "*":
        return t.HandlerKey_AnyAction(t.ResourceKind[resource.upper()])
    if resource == "*":
        return t.HandlerKey_AnyResource(t.Action[action.upper()])
    variant, actions = _EVENT_OF_RESOURCE[resource]
    return t.HandlerKey_Event(variant(actions[action.upper()]))


def _wit_user(fields: Dict[str, Any]) -> t.User:
    extra = {k: v for k, v in fields.items() if k not in runtime.KNOWN_USER_FIELDS}
    display_name = fields.get("display_name")
    return t.User(
        fields["identity"],
        None if display_name is None else str(display_name),
        bool(fields.get("is_authenticated", True)),
        list(fields.get("permissions") or []),
        _json(extra),
        [],
    )


def _user_fields(user: t.User) -> Dict[str, Any]:
    fields: Dict[str, Any] = json.loads(user.extra) if user.extra else {}
    fields["identity"] = user.identity
    if user.display_name is not None:
        fields["display_name"] = user.display_name
    fields["is_authenticated"] = user.is_authenticated
    fields["permissions"] = list(user.permissions)
    return fields


def _condition(condition: runtime.Condition) -> t.Condition:
    key, op, operand = condition
    return t.Condition(key, _OPERATORS[op], _json(operand))


def _clauses(clauses: List[Any]) -> List[Any]:
    out: List[Any] = []
    for clause in clauses:
        if len(clause) == 2:  # ("any_of", branches)
            out.append(t.Clause_AnyOf([[_condition(c) for c in branch] for branch in clause[1]]))
        else:
            out.append(t.Clause_Condition(_condition(clause)))
    return out


class Session:
    """One authenticated user; the request's events are authorized on it."""

    def __init__(self, user: t.User, fields: Optional[Dict[str, Any]] = None) -> None:
        self._fields = fields if fields is not None else _user_fields(user)

    def authorize(self, event: Any, value: str) -> t.Verdict:
        resource = _RESOURCE_OF_EVENT[type(event)]
        action = event.value.name.lower()
        try:
            (kind, clauses), change = runtime.authorize(_auth, self._fields, resource, action, json.loads(value))
        except HTTPException as error:
            raise _http_error(error) from None
        except BaseException:
            _fault(f"the {resource}.{action} handler")
            raise
        if kind == "allow":
            decision: Any = t.Decision_Allow()
        elif kind == "deny":
            decision = t.Decision_Deny()
        else:
            decision = t.Decision_Filter(_clauses(clauses))
        if change.kind == "none":
            wit_change: Any = t.Change_None_()
        elif change.kind == "stamps":
            wit_change = t.Change_Stamps([(k, _json(v)) for k, v in change.stamps])
        else:
            wit_change = t.Change_Value(_json(change.value))
        return t.Verdict(decision, wit_change)


class WardenAuthExports:
    """`register` and `authenticate`."""

    def register(self) -> t.Registration:
        keys = [_handler_key(resource, action) for resource, action in _auth.handler_keys()]
        return t.Registration(keys, _auth.headers_read())

    def authenticate(self, request: t.Request) -> Any:
        try:
            fields = runtime.authenticate(_auth, request.method, request.path, request.query, request.headers)
        except HTTPException as error:
            raise _http_error(error) from None
        except BaseException:
            _fault("authenticate")
            raise
        user = _wit_user(fields)
        return (user, Session(user, fields))
