"""The defender behind KServe: a ``kserve.Model`` subclass and the ``arena serve-model`` server."""

import sys


def _import_kserve() -> None:
    # kserve.model_server parses sys.argv when first imported; keep `arena serve-model ...`'s own
    # options away from its parser.
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve.model_server  # noqa: F401
    finally:
        sys.argv = argv


_import_kserve()

from content_arena.serving.model import DefenderModel, TextBatch, find_model_dir  # noqa: E402
from content_arena.serving.server import create_app, serve  # noqa: E402

__all__ = ["DefenderModel", "TextBatch", "create_app", "find_model_dir", "serve"]
