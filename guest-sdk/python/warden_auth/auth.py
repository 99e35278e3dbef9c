"""`Auth`: the object a policy registers its handlers on, shaped like
`langgraph_sdk.Auth`."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

from . import exceptions as _exceptions
from . import types as _types

#: The actions of each resource (runs are authorized as `threads.create_run`).
ACTIONS: Dict[str, Tuple[str, ...]] = {
    "threads": ("create", "read", "update", "delete", "search", "create_run"),
    "assistants": ("create", "read", "update", "delete", "search"),
    "crons": ("create", "read", "update", "delete", "search"),
    "store": ("put", "get", "search", "delete", "list_namespaces"),
}
ALL_ACTIONS = frozenset(a for actions in ACTIONS.values() for a in actions)

#: What `authenticate` may ask for by parameter name.
AUTHENTICATE_PARAMETERS = frozenset(
    {"request", "path", "method", "query_params", "path_params", "headers", "authorization"}
)

Handler = Callable[..., Any]
Names = Union[str, Sequence[str], None]


class Auth:
    """A policy: one `authenticate` handler and authorization handlers.

    ```python
    auth = Auth()

    @auth.authenticate
    async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
        ...

    @auth.on.threads.create
    async def create(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
        value.setdefault("metadata", {})["owner"] = ctx.user.identity
        return {"owner": ctx.user.identity}
    ```
    """

    types = _types
    exceptions = _exceptions

    def __init__(self) -> None:
        self._authenticate_handler: Optional[Handler] = None
        self._authenticate_parameters: Tuple[str, ...] = ()
        #: `(resource, action)` → handler; `"*"` for "any".
        self._handlers: Dict[Tuple[str, str], Handler] = {}
        self.on = _On(self)

    def authenticate(self, fn: Handler) -> Handler:
        """Registers the authentication handler. It may ask by name for
        `authorization`, `headers`, `path`, `method`, `query_params`,
        `path_params` and `request`, and returns the user: a dict with
        `identity` (and `display_name`, `permissions`, `is_authenticated`,
        any other fields), an object with those attributes, or the identity
        as a string."""
        if self._authenticate_handler is not None:
            raise ValueError(f"Authentication handler already set as {self._authenticate_handler}.")
        parameters = tuple(inspect.signature(fn).parameters)
        unknown = [p for p in parameters if p not in AUTHENTICATE_PARAMETERS]
        if unknown:
            raise ValueError(
                f"authenticate handler {fn.__name__!r} asks for {unknown}; it may ask for "
                f"{sorted(AUTHENTICATE_PARAMETERS)}"
            )
        self._authenticate_handler = fn
        self._authenticate_parameters = parameters
        return fn

    def headers_read(self) -> Optional[list]:
        """The headers `authenticate` reads, or `None` for all of them."""
        if {"headers", "request"} & set(self._authenticate_parameters):
            return None
        return ["authorization"] if "authorization" in self._authenticate_parameters else []

    def handler_keys(self) -> Iterable[Tuple[str, str]]:
        """The `(resource, action)` keys of the registered handlers."""
        return self._handlers.keys()

    def resolve(self, resource: str, action: str) -> Optional[Handler]:
        """The most specific handler of an event, as LangGraph picks it."""
        for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
            handler = self._handlers.get(key)
            if handler is not None:
                return handler
        return None

    def _register(self, resource: str, action: str, fn: Handler) -> Handler:
        if not callable(fn):
            raise TypeError(f"{fn!r} is not a function")
        if resource != "*" and resource not in ACTIONS:
            raise ValueError(f"unknown resource {resource!r}; one of {sorted(ACTIONS)}")
        valid = ALL_ACTIONS if resource == "*" else ACTIONS[resource]
        if action != "*" and action not in valid:
            raise ValueError(f"Invalid action(s) for {resource}: {action}")
        if (resource, action) in self._handlers:
            if (resource, action) == ("*", "*"):
                raise ValueError("Global handler already set.")
            raise ValueError(f"Handler already set for {resource}, {action}.")
        self._handlers[(resource, action)] = fn
        return fn


def _names(names: Names) -> list:
    if names is None:
        return ["*"]
    if isinstance(names, str):
        return [names]
    names = list(names)
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError("resources and actions must be a string or a non-empty list of strings")
    if len(names) != len(set(names)):
        raise ValueError("actions must not contain duplicates")
    return names


class _ActionOn:
    """`auth.on.threads.create`: registers one event's handler."""

    value = dict

    def __init__(self, auth: Auth, resource: str, action: str) -> None:
        self._auth, self._resource, self._action = auth, resource, action

    def __call__(self, fn: Handler) -> Handler:
        return self._auth._register(self._resource, self._action, fn)


class _ResourceOn:
    """`auth.on.threads`: every action of one resource, or (called with
    `actions=`) some of them; `.create`, `.read`, ... for one."""

    value = dict

    def __init__(self, auth: Auth, resource: str) -> None:
        self._auth, self._resource = auth, resource
        for action in ACTIONS[resource]:
            setattr(self, action, _ActionOn(auth, resource, action))

    def __call__(self, fn: Optional[Handler] = None, *, resources: Names = None, actions: Names = None):
        if resources is not None and _names(resources) != [self._resource]:
            raise ValueError(
                f"Resource-specific decorator for {self._resource!r} cannot register handlers "
                f"for {resources!r}. Use @auth.on(...) for other or multiple resources."
            )

        def decorator(handler: Handler) -> Handler:
            for action in _names(actions):
                self._auth._register(self._resource, action, handler)
            return handler

        return decorator(fn) if fn is not None else decorator


class _On:
    """`auth.on`: the global handler (`@auth.on`), handlers by resource and
    action (`@auth.on(resources=..., actions=...)`), and the resources
    (`auth.on.threads`, `auth.on.assistants`, `auth.on.crons`,
    `auth.on.store`)."""

    value = dict

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        self.threads = _ResourceOn(auth, "threads")
        self.assistants = _ResourceOn(auth, "assistants")
        self.crons = _ResourceOn(auth, "crons")
        self.store = _ResourceOn(auth, "store")

    def __call__(self, fn: Optional[Handler] = None, *, resources: Names = None, actions: Names = None):
        def decorator(handler: Handler) -> Handler:
            for resource in _names(resources):
                for action in _names(actions):
                    self._auth._register(resource, action, handler)
            return handler

        return decorator(fn) if fn is not None else decorator
