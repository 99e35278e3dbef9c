"""What the host gives a plugin: its configuration and secrets, a cache
that outlives the request, and the server's log.

Inside the component these call the host; under plain Python (native
tests) they use `settings`, `secrets` and an in-memory cache that tests
may fill."""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

try:  # inside the component
    from wit_world.imports import cache as _cache
    from wit_world.imports import config as _config
    from wit_world.imports import log as _log

    IN_COMPONENT = True
except ImportError:  # plain Python
    IN_COMPONENT = False

#: Native stand-ins for `auth.config` and `auth.secrets`.
settings: Dict[str, str] = {}
secrets: Dict[str, str] = {}
_memory: Dict[str, Tuple[bytes, float]] = {}


def config(key: str) -> Optional[str]:
    """`auth.config.<key>` from the server's configuration."""
    return _config.get(key) if IN_COMPONENT else settings.get(key)


def secret(name: str) -> Optional[str]:
    """The secret `auth.secrets.<name>`; the host keeps it out of logs and
    out of what the plugin returns."""
    return _config.secret(name) if IN_COMPONENT else secrets.get(name)


def cache_get(key: str) -> Optional[bytes]:
    """The value cached under `key`, unless absent or expired."""
    if IN_COMPONENT:
        return _cache.get(key)
    value = _memory.get(key)
    if value is None or value[1] < time.monotonic():
        return None
    return value[0]


def cache_set(key: str, value: bytes, ttl_seconds: int) -> bool:
    """Caches `value` under `key` for `ttl_seconds`; `False` when too large."""
    if IN_COMPONENT:
        try:
            _cache.set(key, value, max(1, ttl_seconds))
            return True
        except Exception:  # componentize_py_types.Err(too-large)
            return False
    _memory[key] = (bytes(value), time.monotonic() + max(1, ttl_seconds))
    return True


def cache_delete(key: str) -> None:
    """Removes the value cached under `key`."""
    if IN_COMPONENT:
        _cache.delete(key)
    else:
        _memory.pop(key, None)


def log(level: str, message: str, **fields: object) -> None:
    """Writes to the server's log (`trace`, `debug`, `info`, `warn`,
    `error`), tagged with the plugin, with structured fields."""
    if IN_COMPONENT:
        _log.log(_log.Level[level.upper()], message, [(k, str(v)) for k, v in fields.items()])
    else:
        import logging

        logging.getLogger("warden_auth").log(
            {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}[level], "%s %s", message, fields
        )
