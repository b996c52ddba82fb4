"""How many torch threads to use: the CPUs this process may actually use, not every core of the node.

In a pod with a CPU limit, the kernel throttles the container to its quota (cgroup ``cpu.max``)
while ``os.cpu_count()`` still reports every core of the node; torch sizes its thread pool from the
latter, oversubscribes the quota and spends most of each period throttled. The rule: threads =
the quota rounded down (at least 1), capped by the CPUs the process may run on. Rounding down
leaves a fraction of a core unused under a fractional limit, which costs less than throttling.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cpu_quota", "default_threads", "set_torch_threads"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_quota(root: str | os.PathLike[str] = CGROUP_ROOT) -> float | None:
    """The container's CPU limit in CPUs, or None when there is none (or no cgroup to read).

    Reads cgroup v2 ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``), then cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: no limit).

    Args:
        root: The cgroup filesystem's mount point.

    Returns:
        quota / period, or None.
    """
    base = Path(root)
    text = _read(base / "cpu.max")
    if text:
        fields = text.split()
        if fields[0] == "max":
            return None
        try:
            quota, period = float(fields[0]), float(fields[1]) if len(fields) > 1 else 100_000.0
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    for folder in (base / "cpu", base / "cpu,cpuacct", base):
        quota_text, period_text = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            continue
        try:
            quota, period = float(quota_text), float(period_text)
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), else ``os.cpu_count()``, at least 1."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def default_threads(root: str | os.PathLike[str] = CGROUP_ROOT) -> int:
    """Threads for torch when the config sets none: the CPU quota rounded down, capped by the CPUs
    available and by ``OMP_NUM_THREADS`` when that is set.

    Args:
        root: The cgroup filesystem's mount point.

    Returns:
        At least 1.
    """
    cpus = available_cpus()
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:  # an operator's explicit choice caps it too
        cpus = min(cpus, int(explicit))
    quota = cpu_quota(root)
    if quota is None:
        return cpus
    return max(1, min(cpus, math.floor(quota)))


def set_torch_threads(configured: int | None) -> int:
    """Set torch's intra-op threads: ``configured`` when given, else :func:`default_threads`.

    Args:
        configured: ``training.torch_threads`` / ``inference.torch_threads`` (None: size from the quota).

    Returns:
        The number set.
    """
    import torch

    threads = configured or default_threads()
    torch.set_num_threads(threads)
    return threads
