"""Throughput and latency of ``POST /api/v1/classify`` through a real ``arena serve`` on 127.0.0.1.

    python bench/bench_api.py [--seconds 8] [--rate 200] [--concurrency 32] [--threads 1] [--home DIR]

What it does, all on loopback:

1. trains a tiny champion (the test suite's tiny model, 600 seed-corpus examples) and registers it in a
   temporary MLflow registry (``--home`` keeps it for the next run);
2. for each server configuration — micro-batched (``api.micro_batch_wait_ms`` = 2, batches up to 64
   texts) and the unbatched baseline (wait 0, batches of 1) — starts ``arena serve`` as a process,
   waits for ``/ready``, and runs a separate load-generator process (httpx, asyncio) that sends
   single-text requests over keep-alive connections
   * at max rate: ``--concurrency`` clients back to back, and
   * at a fixed ``--rate`` req/s (open loop: latency counts from each request's scheduled time);
3. prints requests/s, p50/p99 latency, errors and the mean batch size the server saw.

Bounded: each phase stops after ``--seconds`` or ``--max-requests``. Server and load generator share
the machine's cores, so the figures are for this machine, not a capacity plan.

Entry point for the harness: :func:`run_benchmark` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TOKEN = "bench-read-token"
HOST = "127.0.0.1"
TINY_MODEL = {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "ngram_buckets": 4096, "ngram_dim": 16,
              "max_length": 64}
TINY_TRAINING = {"epochs": 4, "challenger_epochs": 1, "batch_size": 32, "learning_rate": 3e-3, "seed": 3}
CONFIGS = (
    {"name": "micro-batched", "micro_batch_wait_ms": 2.0, "max_batch": 64},
    {"name": "unbatched (baseline)", "micro_batch_wait_ms": 0.0, "max_batch": 1},
)


# ---------------------------------------------------------------------------------- load generator


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


ERROR_KINDS: collections.Counter[str] = collections.Counter()


class Connection:
    """One keep-alive HTTP/1.1 connection with a minimal client: the load generator spends its CPU on
    sending requests, not on a full HTTP library, so more of the machine is left to the server."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def _request(self, text: str) -> bytes:
        body = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        return head.encode("ascii") + body

    async def post(self, text: str) -> bool:
        """True for a 200 answer."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(self._request(text))
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await self.reader.readexactly(length)
            return status == 200
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            ERROR_KINDS[type(exc).__name__] += 1
            await self.close()
            return False

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _parse(url: str) -> tuple[str, int, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or HOST, parts.port or 80, parts.path


async def load_max_rate(url: str, texts: list[str], seconds: float, max_requests: int, concurrency: int) -> dict[str, Any]:
    """``concurrency`` clients, each sending its next request as soon as the previous one is answered."""
    host, port, path = _parse(url)
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal sent, errors
        connection = Connection(host, port, path)
        i = offset
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            started = time.perf_counter()
            if await connection.post(texts[i % len(texts)]):
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += concurrency
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    return _summary("max rate", latencies, errors, elapsed, offered=None, concurrency=concurrency)


async def load_fixed_rate(url: str, texts: list[str], seconds: float, max_requests: int, rate: float) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate whatever happened to the others; its latency counts
    from when it was due, so a server that falls behind shows it. Idle connections are reused."""
    host, port, path = _parse(url)
    n = min(max_requests, int(seconds * rate))
    latencies: list[float] = []
    errors = 0
    idle: list[Connection] = []
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        connection = idle.pop() if idle else Connection(host, port, path)
        if await connection.post(texts[i % len(texts)]):
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1
        idle.append(connection)

    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    for connection in idle:
        await connection.close()
    return _summary(f"{rate:g} req/s", latencies, errors, elapsed, offered=rate, concurrency=None)


def _summary(mode: str, latencies: list[float], errors: int, elapsed: float, *, offered: float | None,
             concurrency: int | None) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies]
    return {
        "mode": mode,
        "offered_rps": offered,
        "concurrency": concurrency,
        "requests": len(latencies) + errors,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "error_kinds": dict(ERROR_KINDS),
    }


def load_main(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    url = f"{args.url}/api/v1/classify"
    asyncio.run(load_max_rate(url, texts, 1.0, 50, 4))  # warm-up: connections, first batches
    ERROR_KINDS.clear()
    if args.mode == "max":
        result = asyncio.run(load_max_rate(url, texts, args.seconds, args.max_requests, args.concurrency))
    else:
        result = asyncio.run(load_fixed_rate(url, texts, args.seconds, args.max_requests, args.rate))
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def prepare_champion(home: Path, threads: int) -> dict[str, Any]:
    """Train and register the tiny champion under ``home`` unless it is already there."""
    import torch

    from content_arena.config import load_config
    from content_arena.data import load_seed_corpus
    from content_arena.model_registry import CHAMPION
    from content_arena.orchestrator import Workspace, register_model
    from content_arena.training import train_champion

    torch.set_num_threads(threads)
    cfg = load_config(None, home=str(home), model=TINY_MODEL, training=TINY_TRAINING)
    ws = Workspace.open(cfg)
    if ws.registry.version_for(CHAMPION) is None:
        examples = load_seed_corpus()
        random.Random(0).shuffle(examples)
        result = train_champion(examples[:600], home / "champion", cfg, val_examples=examples[600:800])
        with ws.registry.run("bench-api-champion") as run:
            version = register_model(ws, result, run, status="champion", alias=CHAMPION)
        ws.registry.set_alias(CHAMPION, version)
    ws.store.close()
    return {"home": str(home), "model": TINY_MODEL}


def sample_texts(n: int = 500) -> list[str]:
    from content_arena.data import load_seed_corpus

    texts = [e.text for e in load_seed_corpus()]
    random.Random(1).shuffle(texts)
    return texts[:n]


def _server_config(home: Path, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "home": str(home),
        "model": TINY_MODEL,
        "api": {"tokens": {TOKEN: "read"}, "rate_limit_per_minute": 10_000_000,
                "micro_batch_wait_ms": config["micro_batch_wait_ms"]},
        "inference": {"batch_size": config["max_batch"]},
    }


def start_server(home: Path, config: dict[str, Any], threads: int, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx
    import yaml

    config_file = home / f"serve-{config['max_batch']}.yaml"
    config_file.write_text(yaml.safe_dump(_server_config(home, config)))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env.update(ARENA_INFERENCE__TORCH_THREADS=str(threads), TQDM_DISABLE="1", TRANSFORMERS_VERBOSITY="error")
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "content_arena.cli", "serve", "--host", HOST, "--port", str(port),
         "--config", str(config_file)],
        env=env, stdout=log, stderr=log, cwd=home,
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"arena serve exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"arena serve did not become ready in 120 s; see {log_path}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def batch_sizes(url: str) -> tuple[float, float]:
    """(count, sum) of the server's arena_classify_batch_size histogram."""
    import httpx

    count = total = 0.0
    for line in httpx.get(f"{url}/api/v1/metrics", timeout=10).text.splitlines():
        if line.startswith("arena_classify_batch_size_count"):
            count = float(line.split()[-1])
        elif line.startswith("arena_classify_batch_size_sum"):
            total = float(line.split()[-1])
    return count, total


def run_load(url: str, texts_file: Path, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "load", "--url", url, "--texts", str(texts_file),
               "--mode", mode, "--seconds", str(args.seconds), "--max-requests", str(args.max_requests),
               "--concurrency", str(args.concurrency), "--rate", str(args.rate)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds * 4 + 120)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_benchmark(
    *, seconds: float = 8.0, rate: float = 200.0, concurrency: int = 32, max_requests: int = 5000,
    threads: int = 1, home: str | Path | None = None,
) -> dict[str, Any]:
    """Both server configurations, both load phases; returns {"rows": [...], "settings": {...}}."""
    args = argparse.Namespace(seconds=seconds, rate=rate, concurrency=concurrency, max_requests=max_requests)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        base = Path(home) if home else Path(scratch)
        base.mkdir(parents=True, exist_ok=True)
        prepare_champion(base, threads)
        texts_file = base / "texts.json"
        texts_file.write_text(json.dumps(sample_texts(), ensure_ascii=False), encoding="utf-8")
        rows = []
        for config in CONFIGS:
            process, url = start_server(base, config, threads, base / f"serve-{config['max_batch']}.log")
            try:
                for mode in ("max", "rate"):
                    before = batch_sizes(url)
                    result = run_load(url, texts_file, mode, args)
                    after = batch_sizes(url)
                    calls = after[0] - before[0]
                    rows.append({
                        "server": config["name"], **result,
                        "mean_batch": round((after[1] - before[1]) / calls, 2) if calls else None,
                    })
            finally:
                stop_server(process)
    return {
        "rows": rows,
        "settings": {"seconds": seconds, "rate": rate, "concurrency": concurrency, "max_requests": max_requests,
                     "server_torch_threads": threads, "cpus": os.cpu_count(), "configs": list(CONFIGS),
                     "load_average_1m_after": round(os.getloadavg()[0], 2)},
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    from bench.common import print_table

    columns = ("server", "mode", "requests", "errors", "throughput_rps", "p50_ms", "p99_ms", "mean_batch")
    print_table("POST /api/v1/classify, one text per request, arena serve on 127.0.0.1",
                [{c: row.get(c) for c in columns} for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="(internal) the load generator process")
    load.add_argument("--url", required=True)
    load.add_argument("--texts", required=True)
    load.add_argument("--mode", choices=("max", "rate"), required=True)
    for p in (parser, load):
        p.add_argument("--seconds", type=float, default=8.0, help="length of each load phase")
        p.add_argument("--rate", type=float, default=200.0, help="fixed-rate phase, requests per second")
        p.add_argument("--concurrency", type=int, default=32, help="clients in the max-rate phase")
        p.add_argument("--max-requests", type=int, default=5000, help="cap on requests per phase")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--home", default=None, help="keep the champion and logs here (reused next run)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.command == "load":
        load_main(args)
        return 0
    result = run_benchmark(seconds=args.seconds, rate=args.rate, concurrency=args.concurrency,
                           max_requests=args.max_requests, threads=args.threads, home=args.home)
    print_rows(result["rows"])
    settings = result["settings"]
    print(f"\n{settings['cpus']} CPUs, 1-minute load average {settings['load_average_1m_after']} at the end "
          f"(server torch threads {settings['server_torch_threads']}; load generator in its own process)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    else:
        from bench.common import write_json

        print(f"\nwritten to {write_json('bench_api', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
