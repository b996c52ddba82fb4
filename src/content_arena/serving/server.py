"""Run :class:`DefenderModel` in KServe's model server (REST v1 and v2 on one port, no gRPC).

``kserve.ModelServer`` always binds 0.0.0.0; :func:`serve` builds the same REST server from its
public parts so the address can be chosen: 127.0.0.1 on a workstation, 0.0.0.0 in a pod.
"""

from __future__ import annotations

from typing import Any

from content_arena.serving.model import DefenderModel


def _rest_server(model: DefenderModel, http_port: int, grace_period: int) -> Any:
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    if not model.ready:
        model.load()
    server = ModelServer(http_port=http_port, enable_grpc=False, workers=1, grace_period=grace_period)
    server.register_model(model)
    return RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        http_port,
        workers=1,
        grace_period=grace_period,
    )


def serve(model: DefenderModel, *, host: str = "127.0.0.1", http_port: int = 8080, grace_period: int = 30) -> None:
    """Load ``model`` (once) and serve it until SIGINT/SIGTERM."""
    rest = _rest_server(model, http_port, grace_period)
    rest.config.host = host
    rest.run()


def create_app(model: DefenderModel, *, grace_period: int = 30) -> Any:
    """KServe's FastAPI application with ``model`` registered, for in-process use (tests, ASGI hosts).

    KServe keeps one application per process (``kserve.model_server.app``): call this once.
    """
    import kserve.model_server

    _rest_server(model, 0, grace_period).create_application()
    return kserve.model_server.app
