"""Warden auth plugins in Python.

Write the policy as you write one for LangGraph (`from warden_auth import
Auth` instead of `from langgraph_sdk import Auth`), test it with plain
`pytest` (`warden_auth.runtime` runs its handlers), and let `warden build`
(or `warden serve` with `auth.path` naming the file) make it a component
with componentize-py."""

from .auth import Auth
from .exceptions import HTTPException

__all__ = ["Auth", "HTTPException"]
