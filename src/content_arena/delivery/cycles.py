"""Cycles of the loop on Kubeflow Pipelines: one pipeline run per cycle, the registry as the state.

The compiled DAG stays one cycle. Each run's ``champion`` step reads the registry's ``champion`` alias,
so a run attacks whatever the previous run promoted; no state passes between runs but the registry and
the store. Two ways to chain them (``arena pipeline submit --cycles N [--every SECONDS]``):

* **sequential** (default): submit a run, wait for it to finish, submit the next; stops at the first
  run that does not succeed. Exactly N cycles, never two at once; the submitting process stays up.
* **recurring run** (``--every``): a KFP recurring run with ``max_concurrency=1`` and ``no_catchup``,
  one trigger every ``every`` seconds between now and ``N × every`` seconds from now. Nothing stays up
  on the client; a cycle longer than the interval delays the next trigger instead of overlapping it,
  so N is an upper bound.

Rule: the in-process runner (:mod:`content_arena.coevolution`) evolves the attacker, replays earlier
failures and checks for forgetting between cycles; chained pipeline runs attack with the configured
strategies each time (the trade-off of keeping the compiled DAG one cycle).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# How long a sequential chain waits for one run (a cycle trains a challenger on a GPU).
RUN_TIMEOUT_S = 6 * 3600


def submit_cycles(client: Any, package: Path, *, cycles: int, every_s: int | None = None,
                  experiment: str = "content-arena", run_name: str | None = None, namespace: str | None = None,
                  service_account: str | None = None, arguments: Mapping[str, Any] | None = None,
                  run_timeout_s: int = RUN_TIMEOUT_S) -> dict[str, Any]:
    """Chain ``cycles`` runs of the compiled pipeline (see the module docstring).

    Args:
        client: A ``kfp.Client``.
        package: The compiled pipeline.
        cycles: How many cycles (>= 1).
        every_s: Seconds between triggers of a recurring run (None: sequential runs, each awaited).
        experiment: The experiment to file the runs under.
        run_name: Name prefix of the runs.
        namespace: Kubeflow profile namespace.
        service_account: ServiceAccount the steps run as.
        arguments: Pipeline parameters.
        run_timeout_s: Sequential mode: how long to wait for one run.

    Returns:
        ``{"mode": "sequential", "runs": [{run_id, state}...]}`` or ``{"mode": "recurring", "recurring_run_id",
        "start", "end", "interval_s"}``.
    """
    if cycles < 1:
        raise ValueError(f"cycles must be at least 1, got {cycles}")
    name = run_name or "content-arena-cycles"
    params = dict(arguments or {})
    if every_s is not None:
        if every_s < 60:
            raise ValueError(f"--every must be at least 60 seconds, got {every_s}")
        exp = client.create_experiment(experiment, namespace=namespace)
        start = datetime.now(timezone.utc)
        end = start + timedelta(seconds=every_s * cycles)
        job = client.create_recurring_run(
            exp.experiment_id, name, start_time=start.isoformat(timespec="seconds"),
            end_time=end.isoformat(timespec="seconds"), interval_second=every_s, max_concurrency=1, no_catchup=True,
            params=params, pipeline_package_path=str(package), service_account=service_account,
        )
        return {"mode": "recurring", "recurring_run_id": job.recurring_run_id, "start": start.isoformat(),
                "end": end.isoformat(), "interval_s": every_s}
    runs = []
    for cycle in range(1, cycles + 1):
        run = client.create_run_from_pipeline_package(
            str(package), arguments=params, run_name=f"{name}-cycle-{cycle}", experiment_name=experiment,
            namespace=namespace, service_account=service_account,
        )
        done = client.wait_for_run_completion(run.run_id, timeout=run_timeout_s)
        state = str(getattr(done, "state", "UNKNOWN"))
        runs.append({"cycle": cycle, "run_id": run.run_id, "state": state})
        log.info("cycle %d: run %s %s", cycle, run.run_id, state)
        if state != "SUCCEEDED":
            break
    return {"mode": "sequential", "runs": runs}
