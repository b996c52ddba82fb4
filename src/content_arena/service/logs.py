"""Structured JSON logs for the service. User texts are never logged: only their length and a hash."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

# Attributes every LogRecord has; anything else passed with ``extra=`` becomes a JSON field.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
NOISY_LOGGERS = ("alembic", "mlflow", "httpx", "urllib3", "transformers", "peft", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(level: int | str = logging.INFO) -> None:
    """One JSON line per record on stderr, for the service and everything it calls."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's own loggers go through the root handler too.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def text_fingerprint(text: str) -> str:
    """A short stable hash of a text, safe to log."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def describe_texts(texts: Sequence[str]) -> dict[str, Any]:
    """What may be logged about user texts at INFO: how many, how long, and hashes of the first few."""
    return {
        "n_texts": len(texts),
        "total_chars": sum(len(t) for t in texts),
        "text_hashes": [text_fingerprint(t) for t in texts[:4]],
    }
