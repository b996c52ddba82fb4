"""The Arena service: a FastAPI app over the library, background workers, and the CLI commands
``arena serve``, ``arena worker`` and ``arena db upgrade``. See docs/service.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """See :func:`content_arena.service.app.create_app` (imported lazily: FastAPI is an optional extra)."""
    from content_arena.service.app import create_app as build

    return build(*args, **kwargs)
