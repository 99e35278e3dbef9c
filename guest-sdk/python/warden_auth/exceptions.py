"""Exceptions a handler raises to answer with an HTTP error."""

from __future__ import annotations

import http
from typing import Mapping, Optional


class HTTPException(Exception):
    """Answer the request with `status_code` and `detail` (401 by default),
    as `langgraph_sdk.Auth.exceptions.HTTPException` does."""

    def __init__(
        self,
        status_code: int = 401,
        detail: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        if detail is None:
            detail = http.HTTPStatus(status_code).phrase
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        super().__init__(f"{status_code}: {detail}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"detail={self.detail!r})"
        )


__all__ = ["HTTPException"]
