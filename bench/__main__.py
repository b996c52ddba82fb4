"""``python -m bench [--quick] [--only NAME,...] [--json PATH] [--threads N]``: one table, one JSON file.

Sections: defender, attacks, battle, api, loop, quality, quality_holdout, backbones (see bench/harness.py); ``cycles``
(bench/bench_cycles.py) only when named. Without ``--json`` the
JSON goes to bench/results/harness.json (harness-quick.json with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

# Sections run only when named with --only (each takes minutes): cycles = bench/bench_cycles.py.
EXTRA_SECTIONS = ("cycles",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.harness import SECTIONS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (about 2 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here instead of bench/results/")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default $ARENA_BENCH_THREADS or min(2, cores))")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress of each stage")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in (*SECTIONS, *EXTRA_SECTIONS)]
    if unknown or not args.sections:
        parser.error(f"unknown section(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SECTIONS)}")
    return args


def quiet() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for noisy in ("alembic", "mlflow", "httpx", "urllib3", "transformers", "peft", "content_arena"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s",
                        stream=sys.stderr)
    quiet()
    if args.verbose:
        logging.getLogger("bench").setLevel(logging.INFO)
    from bench.common import print_table, write_json
    from bench.harness import run, table_rows

    if "cycles" in args.sections:
        from bench import bench_cycles

        payload = bench_cycles.run(threads=args.threads)
        print(f"\nJSON: {write_json('cycles', payload)}")
        args.sections.remove("cycles")
        if not args.sections:
            return 0

    payload = run(args.sections, quick=args.quick, threads=args.threads)
    meta = payload["meta"]
    load = meta.get("load_average_before") or ["?"]
    title = (f"Content Arena benchmarks ({'--quick' if args.quick else 'full'}; {meta['threads']} torch threads; "
             f"{meta['seconds']:.0f} s; load average {load[0]} at start on {meta['cpu_count']} cores; "
             "every figure beside a baseline measured in this run)")
    print_table(title, table_rows(payload))
    if payload["details"].get("quality", {}).get("summaries"):
        from bench.quality import markdown

        print("\nQuality at the policy point (markdown):\n")
        print("\n".join(markdown(payload["details"]["quality"])))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
        path = args.json
    else:
        path = write_json("harness-quick" if args.quick else "harness", payload)
    print(f"\nJSON: {path}")
    failed = [name for name, s in payload["sections"].items() if s["status"] == "error"]
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
