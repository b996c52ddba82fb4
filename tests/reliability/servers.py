"""Private PostgreSQL and Redis servers for fault tests: started on free ports on 127.0.0.1 in a
temporary directory, stopped and started by the tests, never the shared servers other test sessions use.

* PostgreSQL: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free port, ``pg_ctl stop -m
  fast`` to stop it (the same binary and the same way as pg_ctlcluster). As root the server runs as the
  ``postgres`` user (PostgreSQL refuses to run as root).
* Redis: ``redis-server`` in the foreground on a free port without persistence (``--save "" --appendonly
  no``, as the deployment runs it): a stop loses every key, as a real restart does.

The fixtures (``pg_server``, ``redis_server``) are in conftest.py; without the binaries the tests fail
with instructions (ARENA_SKIP_POSTGRES=1 / ARENA_SKIP_REDIS=1 skip them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def postgres_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres (from PATH, else the newest Debian install)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def free_port() -> int:
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


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class PrivateRedis:
    binary: Path
    root: Path
    port: int
    process: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it answers PING (an empty server: nothing is persisted)."""
        import redis

        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - kept open for the child process
        self.process = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--protected-mode", "no"], stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 15
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(self.root / 'redis.log').read_text()[-1000:]}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM and wait: every key is gone, as after a restart without persistence."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def accepts_connections(self) -> bool:
        return _accepts(self.port)


def redis_binary() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None
