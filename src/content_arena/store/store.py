"""The persistence layer: battles, their rounds, model metadata and training data.

One implementation serves SQLite (the embedded default, a file under ``.arena/``) and PostgreSQL
(production). Every public method runs in its own transaction and returns detached records from
:mod:`content_arena.store.records`, never ORM objects.

Concurrency notes:

* Writers that recount a battle (:meth:`Store.add_rounds`) first lock the battle row (``SELECT ... FOR
  UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so concurrent batches for one battle are
  applied one after another and the stored counters always equal a fresh count of the rounds.
* SQLite files run in WAL mode, so readers are not blocked by a writer; an in-memory SQLite database is
  a single shared connection, and the store serialises access to it with a lock.
* PostgreSQL going away (a restart, a failover, a killed backend): pooled connections are pinged before
  use, and the methods a battle runs on (:meth:`Store.get_battle`, :meth:`Store.update_battle`,
  :meth:`Store.add_rounds`, :meth:`Store.done_round_numbers`, :meth:`Store.list_rounds`,
  :meth:`Store.count_rounds`) rerun their whole transaction on a connection error, with exponential
  back-off (tenacity), for up to ``reconnect_timeout_s`` seconds, then raise :class:`StoreUnavailable`.
  Inside :meth:`Store.long_retries` (a battle being played, in that thread) the window is
  ``retry_window_s`` instead (``storage.retry_window_s``, 90 s by default: longer than a managed
  failover), so a battle waits out an outage while an API request gives up sooner with a 503. Each is
  safe to repeat: a transaction cut off before its COMMIT left nothing, and one whose COMMIT got through
  changes nothing the second time (rounds are inserted with ON CONFLICT DO NOTHING and the counters
  recounted).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import operator
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, Table, create_engine, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from content_arena.store.models import Base, utc_now
from content_arena.store.records import (
    BATTLE_STATUSES,
    MODEL_STATUSES,
    TRAINING_SOURCES,
    BattleRecord,
    ModelRecord,
    RoundRecord,
    TrainingSample,
)

DEFAULT_STORE_URL = "sqlite:///.arena/arena.db"
POSTGRES_DRIVER = "postgresql+psycopg"

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_BATTLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (take the write lock
# up front) instead of failing with "database is locked" when two readers both try to upgrade.
_WRITE_TRANSACTION = "arena_write_transaction"

_BATTLES: Table = Base.metadata.tables["battles"]
_ROUNDS: Table = Base.metadata.tables["battle_rounds"]
_MODELS: Table = Base.metadata.tables["model_metadata"]
_TRAINING: Table = Base.metadata.tables["training_data"]

_ROUND_FIELDS = (
    "round_number",
    "strategy",
    "original_text",
    "attacked_text",
    "true_label",
    "toxic_score",
    "predicted_toxic",
    "evaded",
)
_ROUND_OPTIONAL_FIELDS = ("battle_id", "id", "created_at")
_SAMPLE_FIELDS = ("text", "label", "source", "text_hash")
_SAMPLE_OPTIONAL_FIELDS = ("battle_id", "strategy")

RecordT = TypeVar("RecordT")
MethodT = TypeVar("MethodT", bound=Callable[..., Any])

log = logging.getLogger(__name__)

# How long a store call retries while PostgreSQL is unreachable (a restart takes seconds): API requests.
RECONNECT_TIMEOUT_S = 15.0
# The same inside long_retries(): battle work, which should outlast a managed-database failover.
RETRY_WINDOW_S = 90.0
_DISCONNECTED = (OperationalError, InterfaceError, DisconnectionError)


class NotFound(KeyError):
    """The battle or model named in an update does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or opened. The message names where, never a password."""


# --------------------------------------------------------------------------------------------- URLs


def normalize_url(url: str | URL) -> URL:
    """Parse a store URL and pin the PostgreSQL driver to psycopg 3.

    Accepts ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite://`` (memory),
    and ``postgresql://`` / ``postgres://`` / ``postgresql+psycopg://``. Raises ValueError for anything
    else; the message never repeats the URL itself, which may hold a password.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        if "://" not in url:
            raise ValueError(
                "store URL has no scheme: expected sqlite:///path/to/arena.db or postgresql://user@host:port/db"
            )
        scheme = url.split("://", 1)[0]
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError(
                f"malformed store URL with scheme {scheme!r}: could not parse its user, host, port or path"
            ) from None
    if parsed.drivername in _POSTGRES_SCHEMES:
        return parsed.set(drivername=POSTGRES_DRIVER)
    if parsed.drivername in _SQLITE_SCHEMES:
        return parsed
    raise ValueError(
        f"unsupported store URL scheme {parsed.drivername!r}: "
        "use sqlite:///path/to/arena.db or postgresql://user@host:port/db"
    )


def describe_location(url: URL) -> str:
    """Where a URL points, for error messages: host, port and database, without credentials."""
    if url.get_backend_name() == "postgresql":
        host = url.host or "the local socket"
        return f"PostgreSQL at {host}:{url.port or 5432}/{url.database or url.username or ''}"
    return f"SQLite database {url.database}" if not _is_memory_sqlite(url) else "in-memory SQLite database"


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


# ----------------------------------------------------------------------------------------- helpers


def _to_record(record_type: type[RecordT], row: Any) -> RecordT:
    mapping = row._mapping
    fields = dataclasses.fields(record_type)  # type: ignore[arg-type]
    return record_type(**{field.name: mapping[field.name] for field in fields})


def _require_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def _require_label(name: str, value: Any) -> int:
    label = _require_int(name, value)
    if label not in (0, 1):
        raise ValueError(f"{name} must be 0 or 1, got {label}")
    return label


def _require_text(name: str, value: Any, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _require_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"invalid {name} {value!r}; expected one of {', '.join(choices)}")
    return str(value)


def _check_keys(kind: str, item: Mapping[str, Any], required: Sequence[str], optional: Sequence[str]) -> None:
    missing = [key for key in required if key not in item]
    unknown = sorted(set(item) - set(required) - set(optional))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise ValueError(f"{kind} has bad fields: {'; '.join(problems)}")


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None:
        _require_int("limit", limit, minimum=0)
    _require_int("offset", offset, minimum=0)


def _round_values(battle_id: str, item: RoundRecord | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, RoundRecord):
        data: Mapping[str, Any] = {name: getattr(item, name) for name in _ROUND_FIELDS}
        owner = item.battle_id
    elif isinstance(item, Mapping):
        _check_keys("round", item, _ROUND_FIELDS, _ROUND_OPTIONAL_FIELDS)
        data = item
        owner = item.get("battle_id", battle_id)
    else:
        raise TypeError(f"a round must be a RoundRecord or a dict, got {type(item).__name__}")
    if owner != battle_id:
        raise ValueError(f"round belongs to battle {owner!r}, not {battle_id!r}")
    score = float(data["toxic_score"])
    if not math.isfinite(score):
        raise ValueError(f"toxic_score must be a finite number, got {score}")
    return {
        "battle_id": battle_id,
        "round_number": _require_int("round_number", data["round_number"], minimum=0),
        "strategy": _require_text("strategy", data["strategy"], allow_empty=False),
        "original_text": _require_text("original_text", data["original_text"]),
        "attacked_text": _require_text("attacked_text", data["attacked_text"]),
        "true_label": _require_label("true_label", data["true_label"]),
        "toxic_score": score,
        "predicted_toxic": bool(data["predicted_toxic"]),
        "evaded": bool(data["evaded"]),
    }


def _sample_values(item: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise TypeError(f"a training sample must be a dict, got {type(item).__name__}")
    _check_keys("training sample", item, _SAMPLE_FIELDS, _SAMPLE_OPTIONAL_FIELDS)
    text_hash = item["text_hash"]
    if not isinstance(text_hash, str) or not _SHA256_HEX.fullmatch(text_hash):
        raise ValueError("text_hash must be a lowercase hex SHA-256 digest (64 characters)")
    battle_id = item.get("battle_id")
    strategy = item.get("strategy")
    return {
        "text": _require_text("text", item["text"]),
        "label": _require_label("label", item["label"]),
        "source": _require_choice("training source", item["source"], TRAINING_SOURCES),
        "text_hash": text_hash,
        "battle_id": None if battle_id is None else _require_text("battle_id", battle_id),
        "strategy": None if strategy is None else _require_text("strategy", strategy),
    }


def _dialect_insert(dialect_name: str, table: Table) -> Any:
    """INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both backends."""
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def _retry_if_disconnected(method: MethodT) -> MethodT:
    """Rerun a one-transaction Store method while PostgreSQL is unreachable, with exponential back-off
    (0.1 s doubling to 2 s), for the store's current retry window; then raise StoreUnavailable. Only
    for methods that are safe to repeat."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        if self.backend != "postgresql":
            return method(self, *args, **kwargs)
        window = self.current_retry_window_s()

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning("%s: %s; retrying %s in %.1fs", self.location, _first_line(getattr(error, "orig", None) or error),
                        method.__name__, state.upcoming_sleep)

        retrying = Retrying(
            retry=retry_if_exception_type(_DISCONNECTED), stop=stop_after_delay(window),
            wait=wait_exponential(multiplier=0.1, min=0.1, max=2.0), before_sleep=before_sleep, reraise=True,
        )
        try:
            return retrying(method, self, *args, **kwargs)
        except _DISCONNECTED as exc:
            reason = _first_line(getattr(exc, "orig", None) or exc)
            raise StoreUnavailable(
                f"lost {self.location} and could not reconnect within {window:g}s: {reason}"
            ) from exc

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- store


class Store:
    """Battles, rounds, model metadata and training data in SQLite or PostgreSQL.

    ``schema`` (PostgreSQL only, ignored for SQLite) puts every table in that schema via the
    connection's ``search_path``; the schema is created if missing. ``reconnect_timeout_s``: how long
    the battle methods retry while PostgreSQL is unreachable; ``retry_window_s``: the same inside
    :meth:`long_retries` (see the module notes).
    """

    def __init__(
        self,
        url: str | URL = DEFAULT_STORE_URL,
        *,
        schema: str | None = None,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        retry_window_s: float = RETRY_WINDOW_S,
    ) -> None:
        self.url = normalize_url(url)
        self.reconnect_timeout_s = reconnect_timeout_s
        self.retry_window_s = retry_window_s
        self._long = threading.local()
        self.backend = self.url.get_backend_name()
        self.schema = schema if self.backend == "postgresql" else None
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"invalid schema name {self.schema!r}: use letters, digits and underscores")
        self._memory_lock: threading.RLock | None = None
        if self.backend == "postgresql":
            self.engine = self._postgres_engine()
        else:
            self.engine = self._sqlite_engine()
        try:
            with self._serialized(), self.engine.begin() as connection:
                Base.metadata.create_all(connection)
        except (OperationalError, InterfaceError) as exc:
            self.engine.dispose()
            raise StoreUnavailable(f"cannot reach {self.location}: {_first_line(exc.orig)}") from exc

    @property
    def location(self) -> str:
        return describe_location(self.url)

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Store:
        return self

    @contextmanager
    def long_retries(self, enabled: bool = True) -> Iterator[None]:
        """In this block (this thread only), retried methods wait up to ``retry_window_s`` for the
        database instead of ``reconnect_timeout_s``: for work that must outlast an outage (a battle).
        ``enabled=False`` returns to the short window inside such a block."""
        previous = getattr(self._long, "active", False)
        self._long.active = enabled
        try:
            yield
        finally:
            self._long.active = previous

    def current_retry_window_s(self) -> float:
        """The retry window that applies to a call made now from this thread."""
        return self.retry_window_s if getattr(self._long, "active", False) else self.reconnect_timeout_s

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- engines

    def _postgres_engine(self) -> Engine:
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if self.schema is not None:
            self._create_schema_if_missing(self.schema)
            connect_args["options"] = f"-csearch_path={self.schema}"
        return create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)

    def _create_schema_if_missing(self, schema: str) -> None:
        # A separate engine: the main one must first connect once the schema exists, so that
        # SQLAlchemy records it as the default schema.
        engine = create_engine(self.url, poolclass=StaticPool, connect_args={"connect_timeout": 10})
        try:
            with engine.begin() as connection:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
                ).first()
                if exists is None:
                    connection.execute(text(f'CREATE SCHEMA "{schema}"'))  # name checked by _SCHEMA_NAME
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(f"cannot reach {self.location}: {_first_line(exc.orig)}") from exc
        finally:
            engine.dispose()

    def _sqlite_engine(self) -> Engine:
        if _is_memory_sqlite(self.url):
            # One shared connection, usable from any thread; the lock keeps transactions apart.
            self._memory_lock = threading.RLock()
            engine = create_engine(self.url, poolclass=StaticPool, connect_args={"check_same_thread": False})
            use_wal = False
        else:
            path = Path(str(self.url.database)).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the directory for {self.location}: {exc.strerror or exc}"
                ) from exc
            engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})
            use_wal = True

        @event.listens_for(engine, "connect")
        def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook below issue BEGIN instead of the sqlite3 module.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if use_wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_sqlite(connection: Connection) -> None:
            write = connection.get_execution_options().get(_WRITE_TRANSACTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _serialized(self) -> threading.RLock | nullcontext[None]:
        return self._memory_lock if self._memory_lock is not None else nullcontext()

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        with self._serialized(), self.engine.connect() as connection:
            if write:
                connection.execution_options(**{_WRITE_TRANSACTION: True})
            with connection.begin():
                yield connection

    def _insert(self, table: Table) -> Any:
        return _dialect_insert(self.engine.dialect.name, table)

    # ----------------------------------------------------------------------------- battles

    def create_battle(
        self,
        *,
        strategies: list[str],
        rounds: int,
        model_name: str = "content-filter",
        model_version: str | None = None,
        seed: int = 0,
        source: str = "seed",
        params: dict[str, Any] | None = None,
        battle_id: str | None = None,
    ) -> str:
        """Record a new ``pending`` battle and return its id (a fresh uuid4 hex unless given)."""
        if isinstance(strategies, str) or not strategies:
            raise ValueError("strategies must be a non-empty list of strategy names")
        strategy_names = [_require_text("strategy", name, allow_empty=False) for name in strategies]
        battle_id = uuid.uuid4().hex if battle_id is None else battle_id
        if not isinstance(battle_id, str) or not _BATTLE_ID.fullmatch(battle_id):
            raise ValueError("battle_id must be 1-64 letters, digits, '-' or '_'")
        now = utc_now()
        values = {
            "id": battle_id,
            "status": "pending",
            "model_name": _require_text("model_name", model_name, allow_empty=False),
            "model_version": None if model_version is None else str(model_version),
            "strategies": strategy_names,
            "rounds_planned": _require_int("rounds", rounds, minimum=1),
            "rounds_completed": 0,
            "evaded_count": 0,
            "seed": _require_int("seed", seed),
            "source": _require_text("source", source, allow_empty=False),
            "params": dict(params or {}),
            "error": None,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
        }
        try:
            with self._transaction(write=True) as connection:
                connection.execute(_BATTLES.insert().values(**values))
        except IntegrityError:
            raise ValueError(f"battle {battle_id!r} already exists") from None
        return battle_id

    @_retry_if_disconnected
    def get_battle(self, battle_id: str) -> BattleRecord | None:
        with self._transaction() as connection:
            row = connection.execute(select(_BATTLES).where(_BATTLES.c.id == battle_id)).first()
        return None if row is None else _to_record(BattleRecord, row)

    def list_battles(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[BattleRecord]:
        """Battles, newest first."""
        _check_page(limit, offset)
        query = select(_BATTLES).order_by(_BATTLES.c.created_at.desc(), _BATTLES.c.id.desc())
        if status is not None:
            query = query.where(
                _BATTLES.c.status == _require_choice("battle status", status, BATTLE_STATUSES)
            )
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [_to_record(BattleRecord, row) for row in rows]

    @_retry_if_disconnected
    def update_battle(
        self,
        battle_id: str,
        *,
        status: str | None = None,
        error: str | None = None,
        started: bool = False,
        finished: bool = False,
        reopen: bool = False,
    ) -> None:
        """Change status and/or error; ``started``/``finished`` stamp started_at/finished_at with now,
        ``reopen`` clears finished_at (a battle resumed after it failed).

        Arguments left as None keep their stored value. Raises NotFound for an unknown battle.
        """
        now = utc_now()
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = _require_choice("battle status", status, BATTLE_STATUSES)
        if error is not None:
            values["error"] = _require_text("error", error)
        if started:
            values["started_at"] = now
        if finished:
            values["finished_at"] = now
        elif reopen:
            values["finished_at"] = None
        with self._transaction(write=True) as connection:
            result = connection.execute(update(_BATTLES).where(_BATTLES.c.id == battle_id).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"no battle with id {battle_id!r}")

    # ------------------------------------------------------------------------------ rounds

    @_retry_if_disconnected
    def add_rounds(self, battle_id: str, rounds: Sequence[RoundRecord | Mapping[str, Any]]) -> int:
        """Insert rounds in one transaction, skipping round numbers already stored; return how many were new.

        Safe to repeat after a crash: the battle's rounds_completed and evaded_count are recounted from
        the stored rounds in the same transaction, so they stay exact however often a batch is retried.
        A round number repeated within ``rounds`` keeps its first occurrence.
        """
        values = [_round_values(battle_id, item) for item in rounds]
        now = utc_now()
        for row in values:
            row["created_at"] = now
        with self._transaction(write=True) as connection:
            # Lock the battle row first so concurrent batches for this battle run one at a time.
            locked = connection.execute(
                select(_BATTLES.c.id).where(_BATTLES.c.id == battle_id).with_for_update()
            ).first()
            if locked is None:
                raise NotFound(f"no battle with id {battle_id!r}")
            inserted = 0
            if values:
                statement = (
                    self._insert(_ROUNDS)
                    .on_conflict_do_nothing(index_elements=["battle_id", "round_number"])
                    .returning(_ROUNDS.c.id)
                )
                inserted = len(connection.execute(statement, values).all())
            self._recount_battle(connection, battle_id, now)
        return inserted

    def _recount_battle(self, connection: Connection, battle_id: str, now: Any) -> None:
        of_battle = _ROUNDS.c.battle_id == battle_id
        completed = select(func.count()).select_from(_ROUNDS).where(of_battle).scalar_subquery()
        evaded = (
            select(func.count())
            .select_from(_ROUNDS)
            .where(of_battle, _ROUNDS.c.evaded.is_(True))
            .scalar_subquery()
        )
        connection.execute(
            update(_BATTLES)
            .where(_BATTLES.c.id == battle_id)
            .values(rounds_completed=completed, evaded_count=evaded, updated_at=now)
        )

    def _rounds_query(self, battle_id: str, evaded: bool | None) -> Select[Any]:
        query = select(_ROUNDS).where(_ROUNDS.c.battle_id == battle_id)
        if evaded is not None:
            query = query.where(_ROUNDS.c.evaded.is_(bool(evaded)))
        return query

    @_retry_if_disconnected
    def list_rounds(
        self, battle_id: str, *, limit: int | None = 100, offset: int = 0, evaded: bool | None = None
    ) -> list[RoundRecord]:
        """A page of a battle's rounds ordered by round_number (``limit=None``: all); empty if unknown."""
        _check_page(limit, offset)
        query = self._rounds_query(battle_id, evaded).order_by(_ROUNDS.c.round_number)
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [_to_record(RoundRecord, row) for row in rows]

    @_retry_if_disconnected
    def done_round_numbers(self, battle_id: str) -> set[int]:
        """Round numbers already stored for a battle: what a resumed run can skip."""
        query = select(_ROUNDS.c.round_number).where(_ROUNDS.c.battle_id == battle_id)
        with self._transaction() as connection:
            return set(connection.execute(query).scalars())

    @_retry_if_disconnected
    def count_rounds(self, battle_id: str, evaded: bool | None = None) -> int:
        query = select(func.count()).select_from(self._rounds_query(battle_id, evaded).subquery())
        with self._transaction() as connection:
            return int(connection.execute(query).scalar_one())

    # ------------------------------------------------------------------------------ models

    def _release_alias(self, connection: Connection, name: str, version: int, alias: str, now: Any) -> None:
        """An alias names one version: take it away from any other version of the model."""
        connection.execute(
            update(_MODELS)
            .where(_MODELS.c.name == name, _MODELS.c.alias == alias, _MODELS.c.version != version)
            .values(alias=None, updated_at=now)
        )

    def upsert_model(
        self,
        *,
        name: str,
        version: int,
        uri: str,
        run_id: str | None = None,
        alias: str | None = None,
        sha256: str | None = None,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        status: str | None = "registered",
    ) -> None:
        """Insert or update the metadata of ``name`` version ``version``.

        On update, ``uri`` and ``status`` are always written (pass ``status=None`` to keep the stored
        status); the other arguments overwrite only when not None. Giving an alias moves it here from
        any other version of the same model.
        """
        _require_text("name", name, allow_empty=False)
        version = _require_int("version", version, minimum=0)
        _require_text("uri", uri, allow_empty=False)
        if status is not None:
            _require_choice("model status", status, MODEL_STATUSES)
        now = utc_now()
        insert = self._insert(_MODELS).values(
            name=name,
            version=version,
            alias=alias,
            run_id=run_id,
            uri=uri,
            sha256=sha256,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            status=status or "registered",
            created_at=now,
            updated_at=now,
        )
        optional = {"alias": alias, "run_id": run_id, "sha256": sha256, "metrics": metrics, "params": params}
        changed = ["uri", "updated_at", *(key for key, value in optional.items() if value is not None)]
        if status is not None:
            changed.append("status")
        upsert = insert.on_conflict_do_update(
            index_elements=["name", "version"], set_={key: insert.excluded[key] for key in changed}
        )
        with self._transaction(write=True) as connection:
            if alias is not None:
                self._release_alias(connection, name, version, alias, now)
            connection.execute(upsert)

    def set_model_status(
        self, name: str, version: int, status: str, alias: str | None = None, *, clear_alias: bool = False
    ) -> None:
        """Set a version's status; ``alias`` moves that alias here, ``clear_alias`` removes this version's.

        Raises NotFound for an unknown (name, version).
        """
        _require_choice("model status", status, MODEL_STATUSES)
        if alias is not None and clear_alias:
            raise ValueError("give either alias or clear_alias=True, not both")
        now = utc_now()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if alias is not None:
            values["alias"] = alias
        elif clear_alias:
            values["alias"] = None
        with self._transaction(write=True) as connection:
            if alias is not None:
                self._release_alias(connection, name, version, alias, now)
            result = connection.execute(
                update(_MODELS).where(_MODELS.c.name == name, _MODELS.c.version == version).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound(f"no model {name!r} version {version}")

    def get_model(self, name: str, version: int) -> ModelRecord | None:
        query = select(_MODELS).where(_MODELS.c.name == name, _MODELS.c.version == version)
        with self._transaction() as connection:
            row = connection.execute(query).first()
        return None if row is None else _to_record(ModelRecord, row)

    def get_model_by_alias(self, name: str, alias: str) -> ModelRecord | None:
        query = select(_MODELS).where(_MODELS.c.name == name, _MODELS.c.alias == alias)
        with self._transaction() as connection:
            row = connection.execute(query).first()
        return None if row is None else _to_record(ModelRecord, row)

    def list_models(self, name: str | None = None) -> list[ModelRecord]:
        """Model versions, newest version first (grouped by name when no name is given)."""
        query = select(_MODELS).order_by(_MODELS.c.name, _MODELS.c.version.desc())
        if name is not None:
            query = query.where(_MODELS.c.name == name)
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [_to_record(ModelRecord, row) for row in rows]

    # ----------------------------------------------------------------------- training data

    def add_training_samples(self, samples: Sequence[Mapping[str, Any]]) -> int:
        """Insert samples in one transaction, skipping text_hash duplicates; return how many were new.

        Each sample has text, label (0/1), source (seed|battle|augment|import), text_hash (lowercase hex
        SHA-256 chosen by the caller) and optionally battle_id and strategy. Within a batch the first
        occurrence of a hash wins; hashes already stored are skipped.
        """
        unique: dict[str, dict[str, Any]] = {}
        for item in samples:
            values = _sample_values(item)
            unique.setdefault(values["text_hash"], values)
        if not unique:
            return 0
        now = utc_now()
        rows = [{**values, "created_at": now} for values in unique.values()]
        statement = (
            self._insert(_TRAINING)
            .on_conflict_do_nothing(index_elements=["text_hash"])
            .returning(_TRAINING.c.id)
        )
        with self._transaction(write=True) as connection:
            return len(connection.execute(statement, rows).all())

    def list_training_samples(
        self, *, source: str | None = None, battle_id: str | None = None, limit: int | None = None
    ) -> list[TrainingSample]:
        """Samples in insertion order, optionally filtered by source and/or battle."""
        _check_page(limit, 0)
        query = select(_TRAINING).order_by(_TRAINING.c.id)
        if source is not None:
            query = query.where(
                _TRAINING.c.source == _require_choice("training source", source, TRAINING_SOURCES)
            )
        if battle_id is not None:
            query = query.where(_TRAINING.c.battle_id == battle_id)
        with self._transaction() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_to_record(TrainingSample, row) for row in rows]

    def count_training_samples(self, source: str | None = None) -> int:
        query = select(func.count()).select_from(_TRAINING)
        if source is not None:
            query = query.where(
                _TRAINING.c.source == _require_choice("training source", source, TRAINING_SOURCES)
            )
        with self._transaction() as connection:
            return int(connection.execute(query).scalar_one())

    # --------------------------------------------------------------------------- lifecycle

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            with self._serialized(), self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except (SQLAlchemyError, OSError):
            return False

    def close(self) -> None:
        """Close pooled connections. The store reconnects if used again."""
        self.engine.dispose()


def _first_line(error: BaseException | None) -> str:
    message = str(error or "").strip()
    return message.splitlines()[0] if message else type(error).__name__


def open_store(
    url: str | URL = DEFAULT_STORE_URL, *, schema: str | None = None, retry_window_s: float = RETRY_WINDOW_S
) -> Store:
    """Open (and create the tables of) the store at ``url``.

    Args:
        url: the store URL.
        schema: PostgreSQL schema for every table.
        retry_window_s: how long battle work waits for an unreachable database (``storage.retry_window_s``).

    Returns:
        The store.

    Raises ValueError for a malformed or unsupported URL and StoreUnavailable when the database cannot
    be reached; neither message contains a password.
    """
    return Store(url, schema=schema, retry_window_s=retry_window_s)
