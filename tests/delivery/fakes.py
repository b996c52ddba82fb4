"""In-process fakes for the delivery tests: a Kubernetes API server with a simulated KServe controller,
and a Prometheus HTTP API. Both listen on 127.0.0.1 and are driven by the real clients.

FakeKServe implements, for ``serving.kserve.io/v1beta1`` ``inferenceservices`` in one namespace:

* ``GET .../inferenceservices/{name}`` and ``GET .../inferenceservices`` (list, with
  ``fieldSelector=metadata.name=...``);
* ``GET .../inferenceservices?watch=true&resourceVersion=N&timeoutSeconds=S``: a chunked stream of
  ``{"type": "MODIFIED", "object": ...}`` lines for every change after N, closed after S seconds;
  410 Gone (as an ERROR event) for a resourceVersion older than it remembers;
* ``PATCH .../inferenceservices/{name}`` with ``Content-Type: application/json-patch+json``:
  RFC 6902 add / remove / replace / test, all-or-nothing (a failed ``test`` is 422 and changes
  nothing), the result checked against KServe's CRD schema when one is given (422 when invalid),
  ``metadata.generation`` bumped on a spec change. A merge patch whose body is a list is refused
  with 400 and any other content type with 415, as the API server does.

The simulated controller does what KServe (Serverless mode) and Knative do after a spec change:
a new revision when the pod template changes (anything but ``canaryTrafficPercent``), ready after
``ready_delay`` seconds unless its STORAGE_URI is listed in ``bad_uris`` (``"fail"``: the revision
fails; ``"hang"``: it never becomes ready); traffic computed as KServe's ksvc reconciler does
(``canaryTrafficPercent`` to the latest ready revision, the rest to ``latestRolledoutRevision``; see
``pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go``), and
``latestRolledoutRevision`` / ``previousRolledoutRevision`` propagated as ``PropagateStatus`` does
(``pkg/apis/serving/v1beta1/inference_service_status.go``): a revision becomes the rolled-out one
when it is the latest ready revision and takes 100 %.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

GROUP_VERSION = "serving.kserve.io/v1beta1"
_ITEM = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/]+)$")
_COLLECTION = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices$")


class PatchError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# -- RFC 6902 -------------------------------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(422, f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError(422, "the patch may not replace the whole document")
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
    return node, tokens[-1]


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(422, f"path {pointer} does not exist")


def apply_json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in operations:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise PatchError(422, f"operation without a path: {op}")
        if kind == "test":
            node = doc
            for token in _tokens(path):
                node = _child(node, token, path)
            if node != op.get("value"):
                raise PatchError(422, f"testing value {path} failed: {node!r} != {op.get('value')!r}")
            continue
        parent, last = _parent(doc, path)
        if kind == "add":
            if isinstance(parent, dict):
                parent[last] = copy.deepcopy(op["value"])
            elif isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if index > len(parent):
                    raise PatchError(422, f"index out of range at {path}")
                parent.insert(index, copy.deepcopy(op["value"]))
            else:
                raise PatchError(422, f"cannot add at {path}")
        elif kind == "remove":
            _child(parent, last, path)
            if isinstance(parent, dict):
                del parent[last]
            else:
                del parent[int(last)]
        elif kind == "replace":
            _child(parent, last, path)
            if isinstance(parent, dict):
                parent[last] = copy.deepcopy(op["value"])
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        else:
            raise PatchError(422, f"operation {kind!r} is not supported by this fake")
    return doc


class LocalServer:
    """An HTTP server on 127.0.0.1 (a free port) in a daemon thread; a context manager."""

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- the fake API server + controller -------------------------------------------------------------


class FakeKServe(LocalServer):
    """One InferenceService behind a fake API server, reconciled by a simulated KServe controller."""

    def __init__(
        self,
        isvc: dict[str, Any],
        *,
        validate: Callable[[dict[str, Any]], list[str]] | None = None,
        ready_delay: float = 0.05,
        bad_uris: dict[str, str] | None = None,
        keep_events: int = 1000,
    ):
        self.namespace = isvc["metadata"]["namespace"]
        self.name = isvc["metadata"]["name"]
        self.validate = validate
        self.ready_delay = ready_delay
        self.bad_uris = dict(bad_uris or {})
        self.keep_events = keep_events
        self.cond = threading.Condition()
        self.rv = 1
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.patches: list[dict[str, Any]] = []  # {"content_type", "body", "status"}
        self.written: list[dict[str, Any]] = []  # every stored state, for schema checks
        self.revisions: dict[str, dict[str, Any]] = {}
        self._timers: list[threading.Timer] = []
        obj = copy.deepcopy(isvc)
        obj["metadata"].update(generation=1, resourceVersion="1", uid="0f1e2d3c-0000-4000-8000-000000000001")
        first = self._new_revision(obj)
        self.revisions[first]["ready"] = True
        obj["status"] = {
            "observedGeneration": 1,
            "deploymentMode": "Serverless",
            "components": {"predictor": {"latestCreatedRevision": first, "latestReadyRevision": first,
                                         "latestRolledoutRevision": first}},
        }
        self.obj = obj
        self._reconcile_locked(record=False)
        self.written.append(copy.deepcopy(self.obj))
        self._listen(_handler(self))

    def __exit__(self, *exc: object) -> None:
        for timer in self._timers:
            timer.cancel()
        with self.cond:
            self.cond.notify_all()
        super().__exit__(*exc)

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return copy.deepcopy(self.obj)

    # -- API --------------------------------------------------------------------------------------

    def patch(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self.cond:
            record = {"content_type": content_type, "body": None, "status": None}
            self.patches.append(record)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                record["status"] = 400
                return 400, _status(400, "BadRequest", "the request body is not JSON")
            record["body"] = body
            if content_type == "application/merge-patch+json" and isinstance(body, list):
                record["status"] = 400
                return 400, _status(400, "BadRequest", "json: cannot unmarshal array into Go value of type map[string]interface {}")
            if content_type != "application/json-patch+json":
                record["status"] = 415
                return 415, _status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")
            if not isinstance(body, list):
                record["status"] = 400
                return 400, _status(400, "BadRequest", "a JSON patch is a list of operations")
            try:
                updated = apply_json_patch(self.obj, body)
            except PatchError as exc:
                record["status"] = exc.status
                return exc.status, _status(exc.status, "Invalid", str(exc))
            errors = self.validate(updated) if self.validate else []
            if errors:
                record["status"] = 422
                return 422, _status(422, "Invalid", f'InferenceService.serving.kserve.io "{self.name}" is invalid: ' + "; ".join(errors))
            if updated.get("spec") != self.obj.get("spec"):
                updated["metadata"]["generation"] = int(self.obj["metadata"]["generation"]) + 1
            self.obj = updated
            self._store_locked()
            record["status"] = 200
            self._schedule(0.01, self._reconcile)
            return 200, copy.deepcopy(self.obj)

    def events_after(self, rv: int) -> list[tuple[int, str, dict[str, Any]]] | None:
        """Events newer than ``rv``; None when ``rv`` is older than what is remembered (410 Gone)."""
        if self.events and rv < self.events[0][0] - 1:
            return None
        return [e for e in self.events if e[0] > rv]

    # -- the simulated controller -----------------------------------------------------------------

    def _store_locked(self) -> None:
        self.rv += 1
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, "MODIFIED", copy.deepcopy(self.obj)))
        del self.events[: -self.keep_events]
        self.written.append(copy.deepcopy(self.obj))
        self.cond.notify_all()

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _new_revision(self, obj: dict[str, Any]) -> str:
        name = f"{self.name}-predictor-{len(self.revisions) + 1:05d}"
        template = _template(obj)
        uri = _storage_uri(template)
        self.revisions[name] = {"template": template, "ready": False, "failed": False, "uri": uri}
        return name

    def _reconcile(self) -> None:
        with self.cond:
            self._reconcile_locked(record=True)

    def _revision_ready(self, name: str) -> None:
        with self.cond:
            self.revisions[name]["ready"] = True
            self._reconcile_locked(record=True)

    def _reconcile_locked(self, *, record: bool) -> None:
        status = self.obj["status"]
        predictor = status["components"]["predictor"]
        latest_created = predictor["latestCreatedRevision"]
        if _template(self.obj) != self.revisions[latest_created]["template"]:
            latest_created = self._new_revision(self.obj)
            behaviour = self.bad_uris.get(self.revisions[latest_created]["uri"])
            if behaviour == "fail":
                self.revisions[latest_created]["failed"] = True
            elif behaviour != "hang":
                self._schedule(self.ready_delay, lambda name=latest_created: self._revision_ready(name))
        ready = [n for n, r in self.revisions.items() if r["ready"]]
        latest_ready = ready[-1]
        canary = self.obj["spec"]["predictor"].get("canaryTrafficPercent")
        # KServe's ksvc reconciler: canaryTrafficPercent to the latest revision, the rest ("prev") to
        # latestRolledoutRevision; without it, 100 % to the latest revision.
        last_rolled = predictor.get("latestRolledoutRevision", "")
        desired = [{"latestRevision": True, "percent": 100 if canary is None or not last_rolled else int(canary)}]
        if canary is not None and last_rolled and canary < 100:
            desired.append({"tag": "prev", "revisionName": last_rolled, "latestRevision": False, "percent": 100 - int(canary)})
        # Knative: a latestRevision target routes to the latest *ready* revision.
        traffic = [{**t, "revisionName": latest_ready} if t["latestRevision"] else dict(t) for t in desired]
        # KServe's PropagateStatus.
        per_revision: dict[str, int] = {}
        for t in traffic:
            per_revision[t["revisionName"]] = per_revision.get(t["revisionName"], 0) + t["percent"]
        for t in traffic:
            if t["revisionName"] == latest_ready and t["latestRevision"]:
                if predictor.get("latestRolledoutRevision") != latest_ready:
                    if t["percent"] == 100:
                        if predictor.get("latestRolledoutRevision"):
                            predictor["previousRolledoutRevision"] = predictor["latestRolledoutRevision"]
                        predictor["latestRolledoutRevision"] = latest_ready
                elif latest_ready == latest_created and t["percent"] < 100:
                    if per_revision.get(t["revisionName"]) == 100 and predictor.get("previousRolledoutRevision"):
                        predictor["latestRolledoutRevision"] = predictor["previousRolledoutRevision"]
        predictor.update(latestCreatedRevision=latest_created, latestReadyRevision=latest_ready, traffic=traffic)
        revision = self.revisions[latest_created]
        latest_state = "True" if revision["ready"] else "False" if revision["failed"] else "Unknown"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = []
        for kind, value in (("IngressReady", "True"), ("LatestDeploymentReady", latest_state),
                            ("PredictorConfigurationReady", latest_state), ("PredictorReady", "True"),
                            ("PredictorRouteReady", "True"), ("Ready", "True"), ("RoutesReady", "True")):
            condition = {"type": kind, "status": value, "lastTransitionTime": now}
            if value == "False":
                condition.update(reason="RevisionFailed",
                                 message=f'Revision "{latest_created}" failed with message: container exited with code 1.')
            conditions.append(condition)
        status.update(conditions=conditions, observedGeneration=self.obj["metadata"]["generation"],
                      url=f"http://{self.name}.{self.namespace}.example.com")
        if record:
            self._store_locked()


def _template(obj: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(obj["spec"]["predictor"])
    template.pop("canaryTrafficPercent", None)
    return template


def _storage_uri(template: dict[str, Any]) -> str | None:
    for container in template.get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "STORAGE_URI":
                return env.get("value")
    return None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _handler(fake: FakeKServe) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            item, collection = _ITEM.match(url.path), _COLLECTION.match(url.path)
            if item and item.groups() == (fake.namespace, fake.name):
                self._send(200, fake.snapshot())
            elif collection and collection.group(1) == fake.namespace:
                selector = query.get("fieldSelector", "")
                if selector and selector != f"metadata.name={fake.name}":
                    self._send(400, _status(400, "BadRequest", f"unsupported field selector {selector}"))
                elif query.get("watch") in ("true", "1", "True"):
                    self._watch(int(query.get("resourceVersion") or 0), float(query.get("timeoutSeconds") or 30))
                else:
                    with fake.cond:
                        self._send(200, {"apiVersion": GROUP_VERSION, "kind": "InferenceServiceList",
                                         "metadata": {"resourceVersion": str(fake.rv)}, "items": [copy.deepcopy(fake.obj)]})
            else:
                self._send(404, _status(404, "NotFound", f"{url.path} not found"))

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, rv: int, timeout_s: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.monotonic() + timeout_s
            try:
                while True:
                    with fake.cond:
                        pending = fake.events_after(rv)
                        if pending == []:
                            fake.cond.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                            pending = fake.events_after(rv)
                    if pending is None:
                        gone = _status(410, "Expired", f"too old resource version: {rv}")
                        self._chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                        break
                    for event_rv, kind, obj in pending:
                        self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                        rv = event_rv
                    if time.monotonic() >= deadline:
                        break
                self._chunk(b"")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def do_PATCH(self) -> None:
            url = urlparse(self.path)
            item = _ITEM.match(url.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not (item and item.groups() == (fake.namespace, fake.name)):
                self._send(404, _status(404, "NotFound", f"{url.path} not found"))
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            code, payload = fake.patch(content_type, raw)
            self._send(code, payload)

    return Handler


# -- a fake Prometheus ----------------------------------------------------------------------------


class FakePrometheus(LocalServer):
    """``GET|POST /api/v1/query``: ``answer(query)`` returns a list of (labels, value) samples, a
    float (one sample), None (no samples), or an (HTTP status, error type, message) tuple."""

    def __init__(self, answer: Callable[[str], Any]):
        self.answer = answer
        self.queries: list[str] = []
        self._listen(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):

            def _query(self, params: dict[str, list[str]]) -> None:
                query = (params.get("query") or [""])[-1]
                fake.queries.append(query)
                result = fake.answer(query)
                if isinstance(result, tuple):
                    code, kind, message = result
                    if kind is None:
                        self._send(code, message.encode(), "text/plain")
                    else:
                        self._send(code, {"status": "error", "errorType": kind, "error": message})
                    return
                if result is None:
                    samples = []
                elif isinstance(result, int | float):
                    samples = [({}, float(result))]
                else:
                    samples = list(result)
                now = time.time()
                vector = [{"metric": labels, "value": [now, _prom_number(value)]} for labels, value in samples]
                self._send(200, {"status": "success", "data": {"resultType": "vector", "result": vector}})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v1/query":
                    self._send(404, b"404 page not found", "text/plain")
                    return
                self._query(parse_qs(url.query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._query(parse_qs(self.rfile.read(length).decode()))

        return Handler


def _prom_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def closed_port() -> int:
    """A local port with nothing listening (for 'unreachable' tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a fake Kubeflow Pipelines API ----------------------------------------------------------------


class FakeKFP(LocalServer):
    """The few KFP v2beta1 REST calls a run submission makes: healthz, experiments, runs."""

    def __init__(self):
        self.runs: list[dict[str, Any]] = []
        self.experiments: list[dict[str, Any]] = []
        self._listen(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/apis/v2beta1/healthz":
                    self._send(200, {"multi_user": False})
                elif path == "/apis/v2beta1/experiments":
                    self._send(200, {"experiments": fake.experiments})
                else:
                    self._send(404, {"error": f"{path} not found"})

            def do_POST(self) -> None:
                path = urlparse(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if path == "/apis/v2beta1/experiments":
                    experiment = {**body, "experiment_id": f"exp-{len(fake.experiments) + 1}"}
                    fake.experiments.append(experiment)
                    self._send(200, experiment)
                elif path == "/apis/v2beta1/runs":
                    run = {**body, "run_id": f"run-{len(fake.runs) + 1}"}
                    fake.runs.append(run)
                    self._send(200, run)
                else:
                    self._send(404, {"error": f"{path} not found"})

        return Handler
