"""Faults: the PostgreSQL server restarted (stopped, then started) while a battle writes its rounds.

test_faults.py kills the store's *backends* (pg_terminate_backend); here the whole server process goes
away and comes back, which also refuses new connections for as long as it is down.

The server restarted is a private PostgreSQL cluster made for this module (``initdb`` into a temporary
directory, ``pg_ctl start`` on a free port on 127.0.0.1, ``pg_ctl stop -m fast`` to stop it), not the
shared one at ARENA_TEST_POSTGRES_URL: other test sessions on the same machine use that server at the
same time, and a restart would kill their connections too. It is the same PostgreSQL binary, stopped and
started the same way (pg_ctlcluster calls pg_ctl). As root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root). Whatever a test does, the module's teardown stops the cluster and
deletes its directory, and each test leaves the server accepting connections for the next one.
No server binaries: the tests fail with instructions (ARENA_SKIP_POSTGRES=1 skips them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import FakeDefender

pytestmark = pytest.mark.postgres

PLANNED = 90
BATCH = 16  # six batches: 5 × 16 + 10


# ------------------------------------------------------------------------------- a private server


def _server_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres (from PATH, else the newest Debian install)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivatePostgres:
    bin_dir: Path
    root: Path
    port: int
    run_as: list[str]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run([*self.run_as, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:] if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()}\n{log}")

    def initdb(self) -> None:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start and wait until the server accepts connections (pg_ctl -w)."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")
        self._run(str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir), "-w", "-t", "30",
                  "-l", str(self.root / "server.log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions, close every connection, shut down cleanly."""
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-w", "-t", "30", "-m", mode)

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PrivatePostgres]:
    if os.environ.get("ARENA_SKIP_POSTGRES") == "1":
        pytest.skip("ARENA_SKIP_POSTGRES=1")
    bin_dir = _server_binaries()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install postgresql "
                    "or set ARENA_SKIP_POSTGRES=1 to skip the PostgreSQL tests.", pytrace=False)
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="arena-pg-restart-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(bin_dir, root, _free_port(), run_as)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.running():
            try:
                server.stop("immediate")
            except Exception as exc:  # noqa: BLE001 - teardown goes on to delete the directory
                print(f"could not stop the private PostgreSQL: {exc}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg(pg_server: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private server, accepting connections before and after the test."""
    if not pg_server.running():
        pg_server.start()
    yield pg_server
    if not pg_server.running():
        pg_server.start()
    assert pg_server.accepts_connections()


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
