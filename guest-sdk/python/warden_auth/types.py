"""The types handlers see, named as in `langgraph_sdk.Auth.types`."""

from __future__ import annotations

from typing import Any, Dict, Sequence, Union

#: A handler's filter: `{"owner": "user1"}`, `{"k": {"$eq": v}}`,
#: `{"tags": {"$contains": v}}`, `{"$or": [{...}, {...}]}`.
FilterType = Dict[str, Any]
#: What a handler returns: `None`/`True` allow, `False` denies (403), a
#: filter allows and scopes.
HandlerResult = Union[None, bool, FilterType]
MetadataInput = Dict[str, Any]


class MinimalUserDict(dict):
    """The dictionary `authenticate` may return: `identity` (required),
    `display_name`, `is_authenticated`, `permissions` and any other fields."""


class User:
    """The authenticated user (`ctx.user`): attributes for the known fields,
    item access for every field, as LangGraph's user proxy."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Dict[str, Any]) -> None:
        self._fields = fields

    @property
    def identity(self) -> str:
        return self._fields["identity"]

    @property
    def display_name(self) -> str:
        return self._fields.get("display_name") or self._fields["identity"]

    @property
    def is_authenticated(self) -> bool:
        return bool(self._fields.get("is_authenticated", True))

    @property
    def permissions(self) -> Sequence[str]:
        return self._fields.get("permissions", [])

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self):
        return iter(self._fields)

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key, default)

    def dict(self) -> Dict[str, Any]:
        return dict(self._fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"User({self._fields!r})"


BaseUser = User
MinimalUser = User


class AuthContext:
    """What an authorization handler knows: the user, their permissions,
    and the event (`resource`, `action`)."""

    __slots__ = ("user", "permissions", "resource", "action")

    def __init__(self, user: User, resource: str, action: str) -> None:
        self.user = user
        self.permissions = list(user.permissions)
        self.resource = resource
        self.action = action

    def __repr__(self) -> str:
        return (
            f"AuthContext(user={self.user.identity!r}, "
            f"resource={self.resource!r}, action={self.action!r})"
        )


BaseAuthContext = AuthContext


class _Values:
    """`Auth.types.on.<resource>.<action>.value`: the value's type, a dict."""

    value = Dict[str, Any]

    def __init__(self, actions: Sequence[str]) -> None:
        for action in actions:
            setattr(self, action, _Action())


class _Action:
    value = Dict[str, Any]


_ACTIONS = ("create", "read", "update", "delete", "search")


class on:  # noqa: N801 - named as LangGraph names it
    """Value types for annotations: `Auth.types.on.threads.create.value`."""

    value = Dict[str, Any]
    threads = _Values(_ACTIONS + ("create_run",))
    assistants = _Values(_ACTIONS)
    crons = _Values(_ACTIONS)
    store = _Values(("put", "get", "search", "delete", "list_namespaces"))


ThreadsCreate = ThreadsRead = ThreadsUpdate = ThreadsDelete = ThreadsSearch = Dict[str, Any]
RunsCreate = Dict[str, Any]
AssistantsCreate = AssistantsRead = AssistantsUpdate = AssistantsDelete = Dict[str, Any]
AssistantsSearch = CronsCreate = CronsRead = CronsUpdate = CronsDelete = Dict[str, Any]
CronsSearch = StorePut = StoreGet = StoreSearch = StoreDelete = Dict[str, Any]
StoreListNamespaces = Dict[str, Any]

__all__ = [
    "AuthContext",
    "BaseAuthContext",
    "BaseUser",
    "FilterType",
    "HandlerResult",
    "MetadataInput",
    "MinimalUser",
    "MinimalUserDict",
    "User",
    "on",
]
