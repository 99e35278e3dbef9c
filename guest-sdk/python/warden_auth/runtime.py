"""Running a policy's handlers on plain Python data: what the component
does with each call, and what native tests call directly."""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .auth import Auth
from .exceptions import HTTPException
from .types import AuthContext, User

#: The user fields the contract carries by name; the rest are `extra`.
KNOWN_USER_FIELDS = ("identity", "display_name", "is_authenticated", "permissions")


def run(result: Any) -> Any:
    """The value of a handler's result, running a coroutine to its end.

    Handlers run synchronously inside the plugin: a coroutine that awaits
    something that never completes at once (an event loop's I/O or sleep)
    is an error; call `warden_auth.host` functions, which are synchronous."""
    if not inspect.iscoroutine(result):
        return result
    try:
        while True:
            pending = result.send(None)
            if pending is not None:
                raise RuntimeError(
                    "a Warden auth handler awaited an event loop's I/O or sleep; "
                    "handlers run synchronously (use warden_auth.host)"
                )
    except StopIteration as done:
        return done.value
    finally:
        result.close()


class Request:
    """What `authenticate(request=...)` receives: the method, path, query
    parameters and headers (names lower case)."""

    __slots__ = ("method", "path", "query_params", "headers")

    def __init__(self, method: str, path: str, query_params: Dict[str, str], headers: Dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.query_params = query_params
        self.headers = headers

    @property
    def url(self) -> Any:
        return _Url(self.path)


class _Url:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def authenticate(
    auth: Auth,
    method: str,
    path: str,
    query: Sequence[Tuple[str, str]] = (),
    headers: Sequence[Tuple[str, str]] = (),
) -> Dict[str, Any]:
    """Runs `authenticate` and returns the user's fields (`identity` and
    the others); raises `HTTPException` when the handler does."""
    handler = auth._authenticate_handler
    if handler is None:
        raise HTTPException(500, "the policy has no authenticate handler")
    arguments: Dict[str, Any] = {}
    for name in auth._authenticate_parameters:
        if name == "authorization":
            arguments[name] = _header(headers, "authorization")
        elif name == "headers":
            arguments[name] = {k.lower().encode(): v.encode() for k, v in headers}
        elif name == "path":
            arguments[name] = path
        elif name == "method":
            arguments[name] = method
        elif name == "query_params":
            arguments[name] = dict(query)
        elif name == "path_params":
            arguments[name] = {}
        elif name == "request":
            arguments[name] = Request(method, path, dict(query), {k.lower(): v for k, v in headers})
    return user_fields(run(handler(**arguments)))


def _header(headers: Sequence[Tuple[str, str]], name: str) -> Optional[str]:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def user_fields(user: Any) -> Dict[str, Any]:
    """The fields of what `authenticate` returned: a string identity, a
    dict, or an object with `identity` (and maybe `dict()`)."""
    if isinstance(user, str):
        fields: Dict[str, Any] = {"identity": user}
    elif isinstance(user, dict):
        fields = dict(user)
    elif hasattr(user, "identity"):
        fields = dict(user.dict()) if callable(getattr(user, "dict", None)) else {}
        for name in KNOWN_USER_FIELDS:
            if hasattr(user, name):
                fields[name] = getattr(user, name)
    else:
        raise TypeError(f"authenticate returned {type(user).__name__}; expected a dict, a string or a user")
    identity = fields.get("identity")
    if not isinstance(identity, str) or not identity:
        raise TypeError("the user authenticate returned has no string `identity`")
    permissions = fields.get("permissions")
    if permissions is not None:
        fields["permissions"] = [str(p) for p in permissions]
    return fields


#: A handler's result: the decision, and the changes it made to the value.
Decision = Tuple[str, Optional[List[Any]]]


def authorize(auth: Auth, user: Dict[str, Any], resource: str, action: str, value: Any) -> Tuple[Decision, "Change"]:
    """Runs the handler that covers `resource.action` on `value` (mutable,
    as LangGraph passes it) and returns `((kind, clauses), change)`: kind
    `allow`, `deny` or `filter`; `HTTPException` propagates."""
    handler = auth.resolve(resource, action)
    if handler is None:
        return ("allow", None), Change.none()
    before = copy.deepcopy(value)
    ctx = AuthContext(User(user), resource, action)
    result = run(handler(ctx, value))
    return decision(result), Change.between(before, value)


def decision(result: Any) -> Decision:
    """`None`/`True` allow, `False` denies, a dict is a filter."""
    if result is None or result is True:
        return ("allow", None)
    if result is False:
        return ("deny", None)
    if isinstance(result, dict):
        return ("filter", filter_clauses(result))
    raise TypeError(f"a handler returned {type(result).__name__}; expected None, a bool or a filter dict")


#: One condition: `(key, "eq" | "contains", operand)`.
Condition = Tuple[str, str, Any]


def filter_clauses(filter: Dict[str, Any]) -> List[Any]:
    """A filter dict as clauses, every one of which must hold: a
    `Condition`, or `("any_of", [[Condition, ...], ...])` for `$or`."""
    clauses: List[Any] = []
    for key, operand in filter.items():
        if key == "$or":
            branches = _branches(operand, "$or")
            if any(isinstance(c, tuple) and c[0] == "any_of" for b in branches for c in b):
                raise ValueError("invalid filter: too many nested operators")
            clauses.append(("any_of", branches))
        elif key == "$and":
            for branch in _branches(operand, "$and"):
                clauses.extend(branch)
        else:
            clauses.append(_condition(key, operand))
    return clauses


def _branches(operand: Any, name: str) -> List[List[Any]]:
    if not isinstance(operand, list) or len(operand) < 2 or not all(isinstance(b, dict) for b in operand):
        raise ValueError(f"invalid {name} operator: a list of two or more filters")
    return [filter_clauses(branch) for branch in operand]


def _condition(key: str, operand: Any) -> Condition:
    if isinstance(key, str) and key.startswith("$"):
        raise ValueError(f"invalid filter key {key!r}")
    if isinstance(operand, dict) and any(isinstance(k, str) and k.startswith("$") for k in operand):
        if len(operand) != 1:
            raise ValueError(f"invalid filter on {key!r}: must be a dict with one key")
        ((op, inner),) = operand.items()
        if op == "$eq":
            return (key, "eq", inner)
        if op == "$contains":
            return (key, "contains", inner)
        raise ValueError(f"invalid filter on {key!r}: the key must be one of $eq or $contains")
    return (key, "eq", operand)


class Change:
    """What a handler changed in the value: nothing, metadata keys set
    (`stamps`), or anything else (the whole `value`)."""

    __slots__ = ("kind", "stamps", "value")

    def __init__(self, kind: str, stamps: Optional[List[Tuple[str, Any]]] = None, value: Any = None) -> None:
        self.kind, self.stamps, self.value = kind, stamps, value

    @classmethod
    def none(cls) -> "Change":
        return cls("none")

    @classmethod
    def between(cls, before: Any, after: Any) -> "Change":
        if before == after and type(before) is type(after):
            return cls.none()
        if isinstance(before, dict) and isinstance(after, dict):
            if before.keys() - {"metadata"} == after.keys() - {"metadata"} and all(
                before[k] == after[k] for k in before if k != "metadata"
            ):
                old, new = before.get("metadata"), after.get("metadata")
                if isinstance(new, dict) and (old is None or isinstance(old, dict)):
                    old = old or {}
                    if old.keys() <= new.keys():
                        stamps = [(k, v) for k, v in new.items() if k not in old or old[k] != v]
                        if stamps or "metadata" in before:
                            return cls("stamps", stamps=stamps)
        return cls("value", value=after)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Change) and (self.kind, self.stamps, self.value) == (
            other.kind,
            other.stamps,
            other.value,
        )

    def __repr__(self) -> str:
        return f"Change({self.kind!r}, stamps={self.stamps!r}, value={self.value!r})"
