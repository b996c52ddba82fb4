"""content_arena.threads: torch threads sized by the container's CPU quota."""

from __future__ import annotations

import pytest

from content_arena import threads


@pytest.fixture
def cpus(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    def set_cpus(n: int) -> None:
        monkeypatch.setattr(threads, "available_cpus", lambda: n)

    set_cpus(16)
    return set_cpus


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("200000 100000", 2), ("150000 100000", 1), ("50000 100000", 1), ("max 100000", 16), ("3200000 100000", 16)],
)
def test_cgroup_v2_quota_sets_the_thread_count(tmp_path, cpus, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n", encoding="utf-8")
    assert threads.default_threads(tmp_path) == expected


def test_cgroup_v1_quota_and_period_set_the_thread_count(tmp_path, cpus):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n", encoding="utf-8")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n", encoding="utf-8")
    assert threads.cpu_quota(tmp_path) == 3.0
    assert threads.default_threads(tmp_path) == 3
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n", encoding="utf-8")
    assert threads.cpu_quota(tmp_path) is None
    assert threads.default_threads(tmp_path) == 16


def test_no_cgroup_files_or_garbage_fall_back_to_the_available_cpus(tmp_path, cpus):
    assert threads.cpu_quota(tmp_path) is None
    assert threads.default_threads(tmp_path) == 16
    (tmp_path / "cpu.max").write_text("lots 100000\n", encoding="utf-8")
    assert threads.cpu_quota(tmp_path) is None
    cpus(4)
    assert threads.default_threads(tmp_path) == 4


def test_a_configured_count_wins_over_the_quota(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "default_threads", lambda root=None: 3)
    try:
        assert threads.set_torch_threads(None) == 3 and torch.get_num_threads() == 3
        assert threads.set_torch_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_an_explicit_omp_num_threads_caps_the_count(tmp_path, cpus, monkeypatch):
    (tmp_path / "cpu.max").write_text("800000 100000\n", encoding="utf-8")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.default_threads(tmp_path) == 2
