"""The persistence layer against SQLite (a temporary file) and the real PostgreSQL server.

PostgreSQL tests use ARENA_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
each in a fresh schema that is dropped afterwards. An unreachable server fails them with instructions;
ARENA_SKIP_POSTGRES=1 skips them instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from content_arena.store import (
    NotFound,
    RoundRecord,
    Store,
    StoreUnavailable,
    normalize_url,
    open_store,
)
from content_arena.store.models import Base
from support.backends import POSTGRES_URL, require_postgres

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

StoreFactory = Callable[[], Store]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Opens stores on one fresh database (a temporary SQLite file or a new PostgreSQL schema)."""
    opened: list[Store] = []
    schema: str | None = None
    admin: Engine | None = None
    if backend == "postgres":
        admin = require_postgres(request.getfixturevalue("postgres_admin"))
        schema = f"t_{uuid.uuid4().hex[:16]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'arena.db'}"

    def factory() -> Store:
        store = Store(url, schema=schema)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    if admin is not None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()


def make_round(number: int, *, evaded: bool | None = None, strategy: str = "leetspeak") -> dict[str, Any]:
    is_evaded = number % 3 == 0 if evaded is None else evaded
    return {
        "round_number": number,
        "strategy": strategy,
        "original_text": f"you are awful {number}",
        "attacked_text": f"y0u 4re 4wful {number}",
        "true_label": 1,
        "toxic_score": 0.2 if is_evaded else 0.9,
        "predicted_toxic": not is_evaded,
        "evaded": is_evaded,
    }


def expected_evaded(numbers: set[int]) -> int:
    return sum(1 for number in numbers if number % 3 == 0)


def make_sample(body: str, *, source: str = "seed", label: int = 1, **extra: Any) -> dict[str, Any]:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return {"text": body, "label": label, "source": source, "text_hash": digest, **extra}


# ------------------------------------------------------------------------------------------- battles


def test_battle_lifecycle(store: Store) -> None:
    battle_id = store.create_battle(
        strategies=["leetspeak", "homoglyph"], rounds=10, seed=7, source="seed", params={"threshold": 0.5}
    )
    battle = store.get_battle(battle_id)
    assert battle is not None
    assert (battle.status, battle.rounds_planned, battle.rounds_completed, battle.evaded_count) == (
        "pending",
        10,
        0,
        0,
    )
    assert battle.strategies == ["leetspeak", "homoglyph"]
    assert battle.params == {"threshold": 0.5}
    assert battle.model_name == "content-filter" and battle.model_version is None
    assert battle.created_at.tzinfo == timezone.utc and battle.started_at is None

    store.update_battle(battle_id, status="running", started=True)
    running = store.get_battle(battle_id)
    assert running is not None and running.status == "running"
    assert running.started_at is not None and running.started_at.tzinfo == timezone.utc
    assert running.updated_at >= battle.updated_at and running.finished_at is None

    store.update_battle(battle_id, status="failed", error="model server went away", finished=True)
    failed = store.get_battle(battle_id)
    assert failed is not None and failed.status == "failed" and failed.error == "model server went away"
    assert failed.finished_at is not None and failed.finished_at >= running.started_at

    # A resumed battle keeps its error text until a new one is given.
    store.update_battle(battle_id, status="completed", finished=True)
    completed = store.get_battle(battle_id)
    assert completed is not None and completed.status == "completed"
    assert completed.error == "model server went away"

    as_dict = json.loads(json.dumps(completed.to_dict()))
    assert as_dict["id"] == battle_id and as_dict["created_at"].endswith("+00:00")
    assert store.get_battle("missing") is None


def test_list_battles_filters_and_pages_newest_first(store: Store) -> None:
    ids = [store.create_battle(strategies=["leetspeak"], rounds=5) for _ in range(5)]
    store.update_battle(ids[1], status="running")
    store.update_battle(ids[3], status="running")

    assert [battle.id for battle in store.list_battles()] == ids[::-1]
    assert [battle.id for battle in store.list_battles(status="running")] == [ids[3], ids[1]]
    assert [battle.id for battle in store.list_battles(limit=2, offset=1)] == [ids[3], ids[2]]
    assert store.list_battles(status="completed") == []


def test_battle_validation(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=3, battle_id="fixed-id")
    assert battle_id == "fixed-id"
    with pytest.raises(ValueError, match="invalid battle status 'finished'"):
        store.update_battle(battle_id, status="finished")
    with pytest.raises(ValueError, match="invalid battle status"):
        store.list_battles(status="done")
    with pytest.raises(NotFound, match="no battle with id 'nope'") as raised:
        store.update_battle("nope", status="running")
    assert isinstance(raised.value, KeyError)
    with pytest.raises(ValueError, match="already exists"):
        store.create_battle(strategies=["leetspeak"], rounds=3, battle_id="fixed-id")
    with pytest.raises(ValueError, match="strategies"):
        store.create_battle(strategies=[], rounds=3)
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        store.create_battle(strategies=["leetspeak"], rounds=0)
    with pytest.raises(ValueError, match="limit"):
        store.list_battles(limit=-1)
    stored = store.get_battle(battle_id)
    assert stored is not None and stored.status == "pending"


# -------------------------------------------------------------------------------------------- rounds


def test_add_rounds_resumes_after_crash_without_duplicates(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=10)
    assert store.add_rounds(battle_id, [make_round(n) for n in range(5)]) == 5

    # The worker crashed after committing rounds 0-4; the rerun replays the whole battle.
    assert store.done_round_numbers(battle_id) == set(range(5))
    assert store.add_rounds(battle_id, [make_round(n) for n in range(10)]) == 5
    assert store.add_rounds(battle_id, [make_round(n) for n in range(10)]) == 0
    # A repeated round number inside one batch keeps the first occurrence.
    assert store.add_rounds(battle_id, [make_round(10, evaded=True), make_round(10, evaded=False)]) == 1

    battle = store.get_battle(battle_id)
    assert battle is not None
    assert battle.rounds_completed == 11 == store.count_rounds(battle_id)
    assert (
        battle.evaded_count
        == expected_evaded(set(range(10))) + 1
        == store.count_rounds(battle_id, evaded=True)
    )
    assert store.done_round_numbers(battle_id) == set(range(11))
    assert store.add_rounds(battle_id, []) == 0


def test_add_rounds_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=10)
    bad_batch = [make_round(0), {**make_round(1), "true_label": 2}]
    with pytest.raises(ValueError, match="true_label must be 0 or 1"):
        store.add_rounds(battle_id, bad_batch)

    def crash(*_args: object) -> None:
        raise RuntimeError("worker killed mid-transaction")

    monkeypatch.setattr(store, "_recount_battle", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        store.add_rounds(battle_id, [make_round(n) for n in range(4)])
    monkeypatch.undo()

    assert store.count_rounds(battle_id) == 0
    battle = store.get_battle(battle_id)
    assert battle is not None and battle.rounds_completed == 0


def test_add_rounds_input_checks(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=3)
    with pytest.raises(NotFound):
        store.add_rounds("nope", [make_round(0)])
    with pytest.raises(ValueError, match="missing evaded"):
        store.add_rounds(battle_id, [{key: value for key, value in make_round(0).items() if key != "evaded"}])
    with pytest.raises(ValueError, match="unknown colour"):
        store.add_rounds(battle_id, [{**make_round(0), "colour": "red"}])
    with pytest.raises(ValueError, match="belongs to battle 'other'"):
        store.add_rounds(battle_id, [{**make_round(0), "battle_id": "other"}])

    record = RoundRecord(battle_id=battle_id, **make_round(2))
    assert store.add_rounds(battle_id, [record]) == 1
    (stored,) = store.list_rounds(battle_id)
    assert stored.id is not None and stored.created_at is not None
    assert stored.to_dict() | {"id": None, "created_at": None} == record.to_dict()


def test_rounds_pagination_and_evaded_filter(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=25)
    other_id = store.create_battle(strategies=["leetspeak"], rounds=3)
    numbers = list(range(25))
    store.add_rounds(battle_id, [make_round(n) for n in reversed(numbers)])
    store.add_rounds(other_id, [make_round(n) for n in range(3)])

    pages = [store.list_rounds(battle_id, limit=10, offset=offset) for offset in (0, 10, 20)]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [r.round_number for page in pages for r in page] == numbers
    assert all(r.battle_id == battle_id for page in pages for r in page)
    assert store.list_rounds(battle_id, offset=25) == []

    evaded = store.list_rounds(battle_id, evaded=True)
    assert [r.round_number for r in evaded] == [n for n in numbers if n % 3 == 0]
    assert all(r.evaded and not r.predicted_toxic for r in evaded)
    not_evaded = store.list_rounds(battle_id, evaded=False, limit=3, offset=1)
    assert [r.round_number for r in not_evaded] == [2, 4, 5]
    assert store.count_rounds(battle_id, evaded=True) == len(evaded) == 9
    assert store.count_rounds(battle_id, evaded=False) == 16
    assert store.count_rounds(battle_id) == 25 and store.count_rounds("missing") == 0
    assert store.list_rounds("missing") == []


def test_unique_constraints_hold_in_the_database(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=3)
    store.add_rounds(battle_id, [make_round(0)])
    rounds = Base.metadata.tables["battle_rounds"]
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(rounds.insert().values(battle_id=battle_id, **make_round(0)))

    store.upsert_model(name="content-filter", version=1, uri="models:/content-filter/1")
    models = Base.metadata.tables["model_metadata"]
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(
            models.insert().values(
                name="content-filter", version=1, uri="x", metrics={}, params={}, status="registered"
            )
        )

    sample = make_sample("hello")
    store.add_training_samples([sample])
    training = Base.metadata.tables["training_data"]
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(training.insert().values(**sample))
    assert store.count_rounds(battle_id) == 1 and store.count_training_samples() == 1


@pytest.mark.parametrize("store_per_thread", [False, True], ids=["shared-store", "store-per-thread"])
def test_concurrent_add_rounds_end_with_exactly_the_union(
    make_store: StoreFactory, store_per_thread: bool
) -> None:
    main_store = make_store()
    battle_id = main_store.create_battle(strategies=["leetspeak"], rounds=200)
    stores = [make_store() if store_per_thread else main_store for _ in range(4)]
    # Thread t writes rounds 30t .. 30t+79 in batches of 10: neighbours overlap by 50 rounds.
    plans = [list(range(30 * t, 30 * t + 80)) for t in range(4)]
    union = {number for plan in plans for number in plan}
    inserted = [0] * 4
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(thread_index: int) -> None:
        try:
            start.wait()
            plan = plans[thread_index]
            for first in range(0, len(plan), 10):
                batch = [make_round(n) for n in plan[first : first + 10]]
                inserted[thread_index] += stores[thread_index].add_rounds(battle_id, batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(inserted) == len(union)
    assert main_store.done_round_numbers(battle_id) == union
    battle = main_store.get_battle(battle_id)
    assert battle is not None
    assert battle.rounds_completed == len(union) == main_store.count_rounds(battle_id)
    assert battle.evaded_count == expected_evaded(union)


# -------------------------------------------------------------------------------------------- models


def test_model_upsert_list_and_status(store: Store) -> None:
    for version in (2, 1, 3):
        store.upsert_model(
            name="content-filter",
            version=version,
            uri=f"models:/content-filter/{version}",
            run_id=f"run-{version}",
            metrics={"f1": 0.8 + version / 100},
        )
    store.upsert_model(name="other", version=1, uri="models:/other/1")

    assert [m.version for m in store.list_models("content-filter")] == [3, 2, 1]
    assert [(m.name, m.version) for m in store.list_models()] == [
        ("content-filter", 3),
        ("content-filter", 2),
        ("content-filter", 1),
        ("other", 1),
    ]

    before = store.get_model("content-filter", 1)
    assert before is not None and before.status == "registered" and before.alias is None
    store.upsert_model(
        name="content-filter", version=1, uri="s3://bucket/v1", metrics={"f1": 0.9}, sha256="ab" * 32
    )
    after = store.get_model("content-filter", 1)
    assert after is not None
    assert (after.uri, after.metrics, after.sha256) == ("s3://bucket/v1", {"f1": 0.9}, "ab" * 32)
    assert after.run_id == "run-1" and after.params == {}  # None arguments keep stored values
    assert after.created_at == before.created_at and after.updated_at >= before.updated_at
    assert json.loads(json.dumps(after.to_dict()))["version"] == 1

    store.set_model_status("content-filter", 1, "champion", alias="champion")
    store.set_model_status("content-filter", 2, "challenger", alias="challenger")
    champion = store.get_model_by_alias("content-filter", "champion")
    assert champion is not None and (champion.version, champion.status) == (1, "champion")

    # Promoting v2 moves the alias; the old champion is archived and keeps no alias.
    store.set_model_status("content-filter", 2, "champion", alias="champion")
    store.set_model_status("content-filter", 1, "archived")
    statuses = {m.version: (m.status, m.alias) for m in store.list_models("content-filter")}
    assert statuses == {3: ("registered", None), 2: ("champion", "champion"), 1: ("archived", None)}
    store.set_model_status("content-filter", 2, "archived", clear_alias=True)
    assert store.get_model_by_alias("content-filter", "champion") is None

    store.upsert_model(name="content-filter", version=3, uri="models:/content-filter/3", status=None)
    third = store.get_model("content-filter", 3)
    assert third is not None and third.status == "registered"

    with pytest.raises(ValueError, match="invalid model status"):
        store.set_model_status("content-filter", 1, "production")
    with pytest.raises(ValueError, match="invalid model status"):
        store.upsert_model(name="content-filter", version=9, uri="x", status="live")
    with pytest.raises(NotFound, match="no model 'content-filter' version 42"):
        store.set_model_status("content-filter", 42, "champion")
    assert store.get_model("content-filter", 42) is None
    assert store.list_models("missing") == []


# ------------------------------------------------------------------------------------- training data


def test_training_samples_dedup_within_batch_and_across_calls(store: Store) -> None:
    battle_id = store.create_battle(strategies=["leetspeak"], rounds=3)
    first_batch = [make_sample("a"), make_sample("b"), make_sample("a", label=0), make_sample("c", label=0)]
    assert store.add_training_samples(first_batch) == 3
    second_batch = [
        make_sample("c"),
        make_sample("y0u 4re 4wful", source="battle", battle_id=battle_id, strategy="leetspeak"),
        make_sample("d", source="augment"),
    ]
    assert store.add_training_samples(second_batch) == 2
    assert store.add_training_samples(second_batch) == 0
    assert store.add_training_samples([]) == 0

    samples = store.list_training_samples()
    assert [s.text for s in samples] == ["a", "b", "c", "y0u 4re 4wful", "d"]
    assert samples[0].label == 1 and samples[2].label == 0  # the first occurrence wins
    assert store.count_training_samples() == 5
    assert store.count_training_samples(source="seed") == 3
    (from_battle,) = store.list_training_samples(battle_id=battle_id)
    assert (from_battle.source, from_battle.strategy) == ("battle", "leetspeak")
    assert [s.text for s in store.list_training_samples(source="seed", limit=2)] == ["a", "b"]
    assert json.loads(json.dumps(from_battle.to_dict()))["battle_id"] == battle_id

    with pytest.raises(ValueError, match="invalid training source 'scraped'"):
        store.add_training_samples([make_sample("e", source="scraped")])
    with pytest.raises(ValueError, match="text_hash"):
        store.add_training_samples([{**make_sample("e"), "text_hash": "abc"}])
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        store.add_training_samples([make_sample("e", label=3)])
    assert store.count_training_samples() == 5


# ------------------------------------------------------------------------------ connection and URLs


def test_ping_and_close(store: Store, tmp_path: Path) -> None:
    assert store.ping()
    store.close()
    assert store.ping()  # the pool reconnects after close()

    dead = "postgresql+psycopg://postgres@127.0.0.1:1/test" if store.backend == "postgresql" else None
    dead = dead or f"sqlite:///{tmp_path / 'missing-dir' / 'nested' / 'arena.db'}"
    original_engine = store.engine
    store.engine = create_engine(dead, connect_args={"connect_timeout": 2} if "postgresql" in dead else {})
    try:
        assert store.ping() is False
    finally:
        store.engine.dispose()
        store.engine = original_engine


def test_open_store_accepts_plain_urls(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        monkeypatch.chdir(tmp_path)
        with open_store("sqlite:///nested/dir/arena.db") as store:
            store.create_battle(strategies=["leetspeak"], rounds=1)
            assert store.ping() and len(store.list_battles()) == 1
        assert (tmp_path / "nested" / "dir" / "arena.db").is_file()
        with open_store(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'arena.db'}") as reopened:
            assert len(reopened.list_battles()) == 1
        return

    admin = require_postgres(request.getfixturevalue("postgres_admin"))
    schema = f"t_{uuid.uuid4().hex[:16]}"
    plain = normalize_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        # The store creates a missing schema itself.
        with open_store(plain, schema=schema) as store:
            assert store.url.drivername == "postgresql+psycopg"
            store.create_battle(strategies=["leetspeak"], rounds=1)
            assert store.ping() and len(store.list_battles()) == 1
        legacy = plain.replace("postgresql://", "postgres://", 1)
        with open_store(legacy, schema=schema) as reopened:
            assert len(reopened.list_battles()) == 1
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def test_unreachable_database_raises_store_unavailable(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the database directory should be")
        with pytest.raises(StoreUnavailable, match="not-a-directory"):
            open_store(f"sqlite:///{blocker / 'arena.db'}")
        return

    with pytest.raises(StoreUnavailable) as raised:
        open_store("postgresql://arena:s3cret-pw@127.0.0.1:1/test")
    message = str(raised.value)
    assert "PostgreSQL at 127.0.0.1:1/test" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(raised.value.__cause__)


def test_memory_store_works_across_threads() -> None:
    with open_store("sqlite://") as store:
        battle_id = store.create_battle(strategies=["leetspeak"], rounds=40)
        results: list[int] = []
        threads = [
            threading.Thread(
                target=lambda t=t: results.append(
                    store.add_rounds(battle_id, [make_round(n) for n in range(10 * t, 10 * t + 20)])
                )
            )
            for t in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sum(results) == 40
        battle = store.get_battle(battle_id)
        assert battle is not None and battle.rounds_completed == 40


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://arena:s3cret-pw@db:notaport/arena", "malformed store URL with scheme 'postgresql'"),
        ("mysql://arena:s3cret-pw@db/arena", "unsupported store URL scheme 'mysql'"),
        (
            "postgresql+asyncpg://arena:s3cret-pw@db/arena",
            "unsupported store URL scheme 'postgresql\\+asyncpg'",
        ),
        ("arena:s3cret-pw@db/arena", "store URL has no scheme"),
        ("", "store URL has no scheme"),
    ],
)
def test_bad_urls_raise_value_error_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as raised:
        open_store(url)
    assert "s3cret-pw" not in str(raised.value)
    assert raised.value.__cause__ is None


def test_url_normalisation() -> None:
    assert normalize_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///.arena/arena.db").database == ".arena/arena.db"
    assert normalize_url("sqlite://").database is None
    with pytest.raises(ValueError, match="invalid schema name"):
        Store("postgresql://u@127.0.0.1:1/db", schema="x; DROP TABLE battles")
