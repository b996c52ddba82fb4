"""Faults: the PostgreSQL server restarted (stopped, then started) while a battle writes its rounds.

test_faults.py kills the store's *backends* (pg_terminate_backend); here the whole server process goes
away and comes back, which also refuses new connections for as long as it is down.

The server restarted is a private PostgreSQL cluster made for this module (``pg_server`` / ``pg`` in
conftest.py, :class:`servers.PrivatePostgres`), not the shared one at ARENA_TEST_POSTGRES_URL: other test
sessions on the same machine use that server at the same time, and a restart would kill their
connections too. Whatever a test does, the module's teardown stops the cluster and deletes its
directory, and each test leaves the server accepting connections for the next one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.api import FakeDefender

from .servers import PrivatePostgres

pytestmark = pytest.mark.postgres

PLANNED = 90
BATCH = 16  # six batches: 5 × 16 + 10


@pytest.fixture
def open_store(pg: PrivatePostgres) -> Iterator[Callable[..., Any]]:
    """Stores on a fresh schema of the private server; closed afterwards."""
    from content_arena.store import Store

    schema = f"restart_{uuid.uuid4().hex[:12]}"
    opened: list[Any] = []

    def make(**kwargs: Any) -> Any:
        store = Store(pg.url, schema=schema, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ------------------------------------------------------------------------------------------ helpers


def _seeds() -> list[Any]:
    from content_arena.data import Example

    return [Example(text=f"너 같은 놈은 {i}번 꺼져", label=1) for i in range(7)]


def _runner(store: Any, on_progress: Callable[[int, int], None] | None = None) -> Any:
    from content_arena.attack_runner import AttackRunner
    from content_arena.attacks import get_strategy

    strategies = [get_strategy(name) for name in ("spacing", "homoglyph", "jamo_split")]
    return AttackRunner(FakeDefender(), store, strategies, batch_size=BATCH, seed=5, on_progress=on_progress)


def _committed(pg: PrivatePostgres, schema: str, battle_id: str) -> dict[int, str]:
    """round_number → attacked_text as the server has it, read on a connection of its own."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres",
                         connect_timeout=5) as connection:
        rows = connection.execute(
            f'SELECT round_number, attacked_text FROM "{schema}".battle_rounds WHERE battle_id = %s', (battle_id,)
        ).fetchall()
    numbers = [number for number, _ in rows]
    assert len(numbers) == len(set(numbers)), "a round number is stored twice"
    return dict(rows)


def _check_final(store: Any, pg: PrivatePostgres, battle_id: str, before_fault: dict[int, str]) -> None:
    """Exactly the planned rounds, once each; the rounds committed before the fault unchanged; the
    battle's counters agree; and the rounds are what a clean battle with the same plan writes."""
    rows = _committed(pg, store.schema, battle_id)
    assert sorted(rows) == list(range(PLANNED)), "missing or duplicated rounds"
    assert {n: rows[n] for n in before_fault} == before_fault, "a round committed before the restart changed"
    battle = store.get_battle(battle_id)
    assert battle is not None and battle.status == "completed", battle
    assert battle.rounds_completed == PLANNED == store.count_rounds(battle_id)
    clean = _runner(store)
    other = clean.start(_seeds(), PLANNED, model_version="7")
    clean.run(other, _seeds())
    assert _committed(pg, store.schema, other) == rows


# ---------------------------------------------------------------------------------------------- tests


def test_restart_between_batches_the_battle_goes_on(pg: PrivatePostgres, open_store: Callable[..., Any]) -> None:
    """stop + start between two batches: every pooled connection is dead; the next batch reconnects."""
    store = open_store()
    snapshot: dict[int, str] = {}

    def restart_after_second_batch(done: int, planned: int) -> None:
        if done == 2 * BATCH and not snapshot:
            snapshot.update(_committed(pg, store.schema, battle_id))
            pg.restart()
            assert _committed(pg, store.schema, battle_id) == snapshot, "committed rounds lost in the restart"

    runner = _runner(store, restart_after_second_batch)
    battle_id = runner.start(_seeds(), PLANNED, model_version="7")
    summary = runner.run(battle_id, _seeds())
    assert sorted(snapshot) == list(range(2 * BATCH)), "the restart did not happen mid-battle"
    assert summary.status == "completed" and summary.rounds == PLANNED
    _check_final(store, pg, battle_id, snapshot)


def test_server_down_while_a_batch_is_written_the_store_waits_for_it(
    pg: PrivatePostgres, open_store: Callable[..., Any],
) -> None:
    """Stopped between batches and started again 1.5 s later (from another thread): the next batch's
    transaction meets a refused connection, retries, and commits once the server is back."""
    store = open_store()
    snapshot: dict[int, str] = {}
    restarter: list[threading.Thread] = []
    written_while_down: list[float] = []

    def stop_after_third_batch(done: int, planned: int) -> None:
        if done == 3 * BATCH and not snapshot:
            snapshot.update(_committed(pg, store.schema, battle_id))
            pg.stop()
            thread = threading.Timer(1.5, pg.start)
            thread.start()
            restarter.append(thread)
            written_while_down.append(time.monotonic())

    runner = _runner(store, stop_after_third_batch)
    battle_id = runner.start(_seeds(), PLANNED, model_version="7")
    try:
        summary = runner.run(battle_id, _seeds())
    finally:
        for thread in restarter:
            thread.join()
    assert written_while_down, "the server was not stopped mid-battle"
    assert summary.status == "completed" and summary.rounds == PLANNED
    _check_final(store, pg, battle_id, snapshot)


def test_restart_inside_the_batch_transaction_rolls_it_back_and_the_retry_writes_it_once(
    pg: PrivatePostgres, open_store: Callable[..., Any],
) -> None:
    """The server restarts after the batch transaction locked the battle row and before its INSERT:
    that transaction dies uncommitted; the store runs the whole batch again on a new connection."""
    from sqlalchemy import event

    store = open_store()
    inserts: list[int] = []
    snapshot: dict[int, str] = {}

    def restart_before_fourth_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BATTLE_ROUNDS"):
            inserts.append(len(inserts))
            if len(inserts) == 4:
                snapshot.update(_committed(pg, store.schema, battle_id))
                pg.restart()

    event.listen(store.engine, "before_cursor_execute", restart_before_fourth_insert)
    runner = _runner(store)
    battle_id = runner.start(_seeds(), PLANNED, model_version="7")
    summary = runner.run(battle_id, _seeds())
    assert len(inserts) >= 5, "the batch hit by the restart was not retried"
    assert sorted(snapshot) == list(range(3 * BATCH)), "the restart did not happen inside the fourth batch"
    assert summary.status == "completed" and summary.rounds == PLANNED
    _check_final(store, pg, battle_id, snapshot)


def test_server_down_longer_than_the_store_waits_fails_cleanly_and_a_rerun_resumes(
    pg: PrivatePostgres, open_store: Callable[..., Any],
) -> None:
    """Down for longer than the store's reconnect budget (1 s here): the battle stops with one
    StoreUnavailable that names the server, nothing half-written; once the server is back a rerun plays
    only the missing rounds."""
    from content_arena.store import StoreUnavailable

    store = open_store(reconnect_timeout_s=1.0, retry_window_s=1.0)
    snapshot: dict[int, str] = {}

    def stop_after_second_batch(done: int, planned: int) -> None:
        if done == 2 * BATCH and not snapshot:
            snapshot.update(_committed(pg, store.schema, battle_id))
            pg.stop()

    runner = _runner(store, stop_after_second_batch)
    battle_id = runner.start(_seeds(), PLANNED, model_version="7")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        runner.run(battle_id, _seeds())
    waited = time.monotonic() - started
    message = str(raised.value)
    assert f"127.0.0.1:{pg.port}" in message and "\n" not in message, message
    chain, error = [], raised.value.__context__
    while error is not None:
        chain.append(error)
        error = error.__context__
    assert not any(isinstance(e, StoreUnavailable) for e in chain), "raised while recording another failure"
    assert waited < 15, f"gave up after {waited:.1f}s, not after its 1s budget"

    pg.start()
    assert _committed(pg, store.schema, battle_id) == snapshot, "committed rounds lost, or a half batch written"
    # The failure could not be recorded while the server was down: the battle still says running.
    assert store.get_battle(battle_id).status == "running"
    resumed = _runner(store).run(battle_id, _seeds())
    assert resumed.status == "completed" and resumed.rounds == PLANNED
    _check_final(store, pg, battle_id, snapshot)
