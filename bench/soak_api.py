"""A bounded soak of a real ``arena serve`` on 127.0.0.1: steady load for a while, then errors, latency
and the server's memory per window, to see that nothing drifts (latency creeping up, RSS growing).

    python bench/soak_api.py                      # 600 s at 200 req/s, 60 s windows
    python bench/soak_api.py --seconds 60 --window 10 [--rate 200] [--home DIR] [--json out.json]

What it does:

1. trains and registers the tiny champion of ``bench/bench_api.py`` (``--home`` keeps it between runs)
   and starts ``arena serve`` with it (micro-batched: wait 2 ms, batches up to 64, torch threads 1);
2. starts a load generator as a SEPARATE process (``--load`` mode of this file): an open loop at
   ``--rate`` requests/s (request i is due at start + i/rate whatever happened before; its latency counts
   from when it was due, so a server falling behind shows), over keep-alive connections, at most
   ``--max-in-flight`` outstanding; connections idle for 4 s are retired before uvicorn's 5 s keep-alive
   timeout closes them under a request. The mix: 70 % single-text ``POST /api/v1/classify``, 30 % reads
   spread over ``GET /api/v1/battles``, ``/api/v1/models``, ``/pipeline/runs``, ``/api/v1/metrics/quality``,
   ``/ready`` and ``/api/v1/metrics``;
3. meanwhile samples the server's resident memory (VmRSS from /proc, the process and its children)
   every second;
4. prints one row per window: requests, errors, p50/p99 ms, classify p99, and the server's RSS at the
   end of the window; then the error kinds and a flat-memory verdict (RSS of the last window against
   the first, after warm-up: growth under 10 % + 16 MiB passes).

Server, load generator and this supervisor share the machine's cores; the figures are for the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_api import HOST, TOKEN, prepare_champion, sample_texts, start_server, stop_server  # noqa: E402

SERVER = {"name": "soak (micro-batched)", "micro_batch_wait_ms": 2.0, "max_batch": 64}
READ_PATHS = ("/api/v1/battles", "/api/v1/models", "/pipeline/runs", "/api/v1/metrics/quality", "/ready",
              "/api/v1/metrics")
CLASSIFY_SHARE = 0.7
KEEP_ALIVE_S = 4.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------------- load generator


class Client:
    """One keep-alive HTTP/1.1 connection; just enough HTTP to read a status and a Content-Length body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = time.perf_counter()

    def _request(self, method: str, path: str, body: bytes | None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode("ascii") + (body or b"")

    async def send(self, method: str, path: str, body: bytes | None) -> int | str:
        """The status code, or the name of the transport error."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(self._request(method, path, body))
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await self.reader.readexactly(length)
            self.last_used = time.perf_counter()
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await self.close()
            return type(exc).__name__

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def soak(url: str, texts: list[str], seconds: float, rate: float, window: float, max_in_flight: int) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or HOST, parts.port or 80
    rng = random.Random(7)
    n = int(seconds * rate)
    plan = [("classify" if rng.random() < CLASSIFY_SHARE else rng.choice(READ_PATHS)) for _ in range(n)]
    windows: dict[int, dict[str, Any]] = collections.defaultdict(
        lambda: {"latencies": [], "classify": [], "errors": 0, "requests": 0})
    error_kinds: collections.Counter[str] = collections.Counter()
    idle: list[Client] = []
    gate = asyncio.Semaphore(max_in_flight)
    dropped = 0
    start = time.perf_counter() + 0.1

    async def take_client() -> Client:
        # uvicorn closes a keep-alive connection after 5 s idle; one reused just as it closes would fail
        # with an empty read that is the client's doing, not the server's. Retire them at 4 s.
        while idle:
            client = idle.pop()
            if time.perf_counter() - client.last_used < KEEP_ALIVE_S:
                return client
            await client.close()
        return Client(host, port)

    async def one(i: int, due: float) -> None:
        nonlocal dropped
        bucket = windows[int((due - start) // window)]
        bucket["requests"] += 1
        if gate.locked():  # more than max_in_flight outstanding: count it as an error, do not queue it
            dropped += 1
            bucket["errors"] += 1
            error_kinds["client: too many in flight"] += 1
            return
        async with gate:
            client = await take_client()
            kind = plan[i]
            if kind == "classify":
                body = json.dumps({"text": texts[i % len(texts)]}, ensure_ascii=False).encode("utf-8")
                status = await client.send("POST", "/api/v1/classify", body)
            else:
                status = await client.send("GET", kind, None)
            idle.append(client)
        latency_ms = (time.perf_counter() - due) * 1000
        if status == 200:
            bucket["latencies"].append(latency_ms)
            if kind == "classify":
                bucket["classify"].append(latency_ms)
        else:
            bucket["errors"] += 1
            error_kinds[f"{kind}: {status}"] += 1

    # Each request becomes a task when it is due, not before: creating all of them up front (120,000
    # for the default 600 s) stalled this event loop for seconds at the start, and the requests it then
    # sent late were counted against the server (about 1,000 "too many in flight" in the first minute).
    running: set[asyncio.Task[None]] = set()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    elapsed = time.perf_counter() - start
    for client in idle:
        await client.close()
    rows = []
    for index in sorted(windows):
        bucket = windows[index]
        rows.append({
            "window": index, "t_end_s": round((index + 1) * window, 1), "requests": bucket["requests"],
            "errors": bucket["errors"], "p50_ms": round(percentile(bucket["latencies"], 50), 2),
            "p99_ms": round(percentile(bucket["latencies"], 99), 2),
            "classify_p99_ms": round(percentile(bucket["classify"], 99), 2),
        })
    all_latencies = [x for b in windows.values() for x in b["latencies"]]
    return {"rows": rows, "seconds": round(elapsed, 1), "requests": n, "errors": sum(r["errors"] for r in rows),
            "achieved_rps": round(len(all_latencies) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(all_latencies, 50), 2), "p99_ms": round(percentile(all_latencies, 99), 2),
            "error_kinds": dict(error_kinds), "dropped_in_flight": dropped}


def load_main(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    result = asyncio.run(soak(args.url, texts, args.seconds, args.rate, args.window, args.max_in_flight))
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------ supervisor


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants (uvicorn workers, if any)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, ValueError):
            continue
        todo.extend(int(c) for c in children)
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.started_at = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        self.started_at = time.perf_counter()
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter() - self.started_at, rss_bytes(self.pid)))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def at(self, t: float) -> int:
        """The last sample taken at or before ``t`` seconds."""
        best = self.samples[0][1] if self.samples else 0
        for when, value in self.samples:
            if when <= t:
                best = value
        return best


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="arena-soak-") as scratch:
        base = Path(args.home) if args.home else Path(scratch)
        base.mkdir(parents=True, exist_ok=True)
        prepare_champion(base, args.threads)
        texts_file = base / "soak-texts.json"
        texts_file.write_text(json.dumps(sample_texts(), ensure_ascii=False), encoding="utf-8")
        process, url = start_server(base, SERVER, args.threads, base / "soak-serve.log")
        try:
            # Warm-up outside the measured windows (connections, first batches, lazy imports).
            subprocess.run(_load_command(args, url, texts_file, seconds=min(5.0, args.seconds), rate=50.0),
                           capture_output=True, text=True, timeout=120, check=True)
            sampler = RssSampler(process.pid)
            sampler.start()
            done = subprocess.run(_load_command(args, url, texts_file, seconds=args.seconds, rate=args.rate),
                                  capture_output=True, text=True, timeout=args.seconds * 3 + 120)
            sampler.stop()
            if done.returncode != 0:
                raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            alive = process.poll() is None
        finally:
            stop_server(process)
    mib = 1024 * 1024
    for row in result["rows"]:
        row["server_rss_mib"] = round(sampler.at(row["t_end_s"]) / mib, 1)
    rss = [r["server_rss_mib"] for r in result["rows"]]
    first, last = (rss[0], rss[-1]) if rss else (0.0, 0.0)
    growth = last - first
    result.update({
        "server": SERVER["name"], "rate": args.rate, "window_s": args.window, "threads": args.threads,
        "server_alive_after": alive, "rss_first_mib": first, "rss_last_mib": last,
        "rss_peak_mib": round(max((v for _, v in sampler.samples), default=0) / mib, 1),
        "rss_growth_mib": round(growth, 1), "memory_flat": growth <= 0.10 * first + 16,
    })
    return result


def _load_command(args: argparse.Namespace, url: str, texts_file: Path, *, seconds: float, rate: float) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--load", "--url", url, "--texts", str(texts_file),
            "--seconds", str(seconds), "--rate", str(rate), "--window", str(args.window),
            "--max-in-flight", str(args.max_in_flight)]


def print_report(result: dict[str, Any]) -> None:
    print(f"soak: {result['seconds']} s at {result['rate']:g} req/s offered, {result['achieved_rps']} req/s answered 200, "
          f"{result['requests']} requests, {result['errors']} errors; overall p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms")
    header = f"{'window':>6} {'t_end_s':>8} {'requests':>8} {'errors':>6} {'p50_ms':>8} {'p99_ms':>8} " \
             f"{'cls_p99':>8} {'rss_MiB':>8}"
    print(header)
    for row in result["rows"]:
        print(f"{row['window']:>6} {row['t_end_s']:>8} {row['requests']:>8} {row['errors']:>6} {row['p50_ms']:>8} "
              f"{row['p99_ms']:>8} {row['classify_p99_ms']:>8} {row['server_rss_mib']:>8}")
    if result["error_kinds"]:
        print("errors:", json.dumps(result["error_kinds"]))
    p99s = [r["p99_ms"] for r in result["rows"] if r["p99_ms"] == r["p99_ms"]]
    if p99s:
        print(f"p99 per window: median {statistics.median(p99s):.2f} ms, max {max(p99s):.2f} ms")
    verdict = "flat" if result["memory_flat"] else "GROWING"
    print(f"server RSS: first window {result['rss_first_mib']} MiB, last {result['rss_last_mib']} MiB, "
          f"peak {result['rss_peak_mib']} MiB, growth {result['rss_growth_mib']} MiB -> {verdict}; "
          f"server alive after the soak: {result['server_alive_after']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the soak (default 600)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests per second (default 200)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per reported window (default 60)")
    parser.add_argument("--max-in-flight", type=int, default=256, help="outstanding requests before new ones fail")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (default 1)")
    parser.add_argument("--home", help="keep the champion and the logs here (default: a temporary directory)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        load_main(args)
        return 0
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = run_soak(args)
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    errors_ok = result["errors"] <= 0.001 * result["requests"]
    return 0 if (errors_ok and result["memory_flat"] and result["server_alive_after"]) else 1


if __name__ == "__main__":
    sys.exit(main())
