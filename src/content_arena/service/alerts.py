"""``POST /api/v1/alerts``: Alertmanager's webhook, from an alert to an action.

Each alert of a notification is recorded in the ``alerts`` table (name, status, labels, annotations,
times, what was done). A firing alert labelled ``action="retrain"`` queues a pipeline run when
``monitoring.alert_triggers_pipeline`` is true (off by default: runs stay manual), through the same
one-run rule as ``POST /pipeline/trigger``: the training lock decides, so a storm of alerts starts at
most one run. A canary rollout checks the recorded alerts (:func:`recorded_alert_check`) and rolls the
canary back when one labelled ``rollback="true"`` starts firing during it.

The table is a side table of the store (:mod:`content_arena.store.side_tables`), as ``pipeline_runs`` is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from content_arena.service.routes import ADMIN, AUTH_RESPONSES
from content_arena.service.security import Principal
from content_arena.store import Store
from content_arena.store.models import utc_now
from content_arena.store.side_tables import SideTable
from content_arena.store.side_tables import alerts as alerts_table

if TYPE_CHECKING:
    from content_arena.service.context import ServiceContext

log = logging.getLogger(__name__)

RETRAIN = "retrain"
MAX_ALERTS = 1000


# -- the webhook body (Alertmanager's format, version 4) ------------------------------------------


MAX_LABELS = 64
MAX_LABEL_CHARS = 4000


def _storable(value: str) -> str:
    """A string the store can keep on every backend: no NUL (PostgreSQL text and JSONB refuse it) and no
    lone surrogate (not UTF-8), at most MAX_LABEL_CHARS characters."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("contains a lone surrogate")
    if len(value) > MAX_LABEL_CHARS:
        raise ValueError(f"longer than {MAX_LABEL_CHARS} characters")
    return value


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("labels", "annotations")
    @classmethod
    def _storable_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"more than {MAX_LABELS} entries")
        for key, item in value.items():
            _storable(key)
            _storable(item)
        return value

    @field_validator("fingerprint", "generatorURL")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        return None if value is None else _storable(value)

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str | None = Field(None, max_length=4000)  # noqa: N815
    fingerprint: str | None = Field(None, max_length=64)


class AlertNotification(BaseModel):
    """What Alertmanager POSTs to a webhook receiver."""

    model_config = ConfigDict(extra="ignore")

    version: str | None = None
    groupKey: str | None = None  # noqa: N815
    status: str = Field("firing", pattern="^(firing|resolved)$")
    receiver: str | None = None
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str | None = None  # noqa: N815
    alerts: list[AlertIn] = Field(default_factory=list, max_length=MAX_ALERTS)


class AlertAction(BaseModel):
    id: str
    alertname: str
    status: str
    action: str
    run_id: str | None = None


class AlertsOut(BaseModel):
    received: int
    actions: list[AlertAction]


# -- the record -----------------------------------------------------------------------------------


class AlertStore(SideTable):
    """The ``alerts`` table on a store's database; every call is one transaction."""

    table = alerts_table

    def record(self, alert: AlertIn, action: str, run_id: str | None) -> str:
        alert_id = uuid.uuid4().hex
        with self._transaction() as connection:
            connection.execute(alerts_table.insert().values(
                id=alert_id, fingerprint=alert.fingerprint, alertname=alert.labels.get("alertname", "unnamed")[:200],
                status=alert.status, labels=dict(alert.labels), annotations=dict(alert.annotations),
                starts_at=_utc(alert.startsAt), ends_at=_utc(alert.endsAt), received_at=utc_now(), action=action,
                run_id=run_id,
            ))
        return alert_id

    def list(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded alerts, newest first."""
        query = select(alerts_table).order_by(alerts_table.c.received_at.desc()).limit(limit)
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()} for row in rows]

    def firing_since(self, since: datetime, **labels: str) -> list[str]:
        """Names of alerts received firing at or after ``since`` whose labels include ``labels``."""
        query = select(alerts_table).where(alerts_table.c.status == "firing", alerts_table.c.received_at >= since)
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        names = []
        for row in rows:
            have = row._mapping["labels"] or {}
            if all(have.get(k) == v for k, v in labels.items()):
                names.append(row._mapping["alertname"])
        return sorted(set(names))


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.year < 1971:  # Alertmanager sends 0001-01-01 for "not ended"
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def recorded_alert_check(store: Store) -> Callable[[float], list[str]]:
    """For :class:`~content_arena.rollout.CanaryRollout`: the alerts labelled ``rollback="true"``
    received firing since a rollout started (a unix time)."""
    alerts = AlertStore(store)

    def check(started_at: float) -> list[str]:
        return alerts.firing_since(datetime.fromtimestamp(started_at, timezone.utc), rollback="true")

    return check


# -- the route ------------------------------------------------------------------------------------


def handle_notification(ctx: ServiceContext, alerts: AlertStore, body: AlertNotification, requested_by: str) -> list[dict[str, Any]]:
    """Record each alert and act on it (see the module docstring); returns what was done per alert."""
    from content_arena.service.jobs import queue_pipeline_run

    allowed = ctx.cfg.monitoring.alert_triggers_pipeline
    done = []
    for alert in body.alerts:
        name = alert.labels.get("alertname", "unnamed")
        action, run_id = "recorded", None
        if alert.status == "firing" and alert.labels.get("action") == RETRAIN:
            if not allowed:
                action = "pipeline_disabled"
            else:
                queued, holder = queue_pipeline_run(ctx, f"alert:{name}"[:64])
                action, run_id = ("pipeline_queued", queued) if queued else ("pipeline_busy", holder)
        alert_id = alerts.record(alert, action, run_id)
        ctx.metrics.alerts.labels(alertname=name[:200], status=alert.status).inc()
        ctx.metrics.alert_actions.labels(action=action).inc()
        log.warning("alert %s %s: %s", name, alert.status, action, extra={"alertname": name, "run_id": run_id})
        done.append({"id": alert_id, "alertname": name, "status": alert.status, "action": action, "run_id": run_id})
    return done


router = APIRouter()


@router.post("/api/v1/alerts", response_model=AlertsOut, tags=["operations"], responses=AUTH_RESPONSES)
def receive_alerts(body: AlertNotification, request: Request, principal: Principal = ADMIN) -> dict[str, Any]:
    """Alertmanager webhook (``webhook_configs`` with the admin token as bearer credentials): records
    each alert; a firing one labelled ``action="retrain"`` queues a pipeline run when
    ``monitoring.alert_triggers_pipeline`` allows it, under the one-run rule. Needs admin."""
    state = request.app.state.arena
    actions = handle_notification(state.ctx, state.alerts, body, principal.key)
    return {"received": len(body.alerts), "actions": actions}


@router.get("/api/v1/alerts", tags=["operations"], responses=AUTH_RESPONSES)
def list_alerts(request: Request, limit: int = Query(100, ge=1, le=1000), _: Principal = ADMIN) -> dict[str, Any]:
    """Recorded alerts, newest first. Needs admin."""
    return {"alerts": request.app.state.arena.alerts.list(limit=limit)}
