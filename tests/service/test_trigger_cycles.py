"""POST /pipeline/trigger with ``cycles``: strict, bounded, passed to the run."""

from __future__ import annotations

from typing import Any

import pytest

from content_arena.service import jobs
from support.api import ADMIN, READ, FakeDefender, wait_for


def test_trigger_passes_cycles_to_the_run_and_refuses_bad_values(service_config: Any, make_client: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses a FAKE pipeline run function: this test is about the request, not what a run does."""
    calls: list[tuple[int, bool]] = []

    def fake(cfg: Any, cycles: int = 1, until_pass: bool = False) -> dict[str, Any]:
        calls.append((cycles, until_pass))
        return {"gate": {"decision": "PASS", "reasons": []}, "challenger": None, "promoted": False, "seconds": 0.1,
                "cycles": [{"cycle": i + 1} for i in range(cycles)]}

    monkeypatch.setattr(jobs, "execute_pipeline", fake)
    client = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    for bad in ({"cycles": 0}, {"cycles": 101}, {"cycles": "3"}, {"cycles": 2.5}, {"cycles": True}, {"cycle": 3}):
        response = client.post("/pipeline/trigger", headers=ADMIN, json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert calls == []

    response = client.post("/pipeline/trigger", headers=ADMIN, json={"cycles": 3, "until_pass": True})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    done = wait_for(lambda: (body := client.get(f"/pipeline/runs/{run_id}", headers=READ).json())["status"]
                    == "completed" and body)
    assert calls == [(3, True)] and len(done["summary"]["cycles"]) == 3
    wait_for(lambda: client.app.state.arena.ctx.backend.training_lock.holder() is None)
    # Without a body the trigger is one cycle, as before.
    assert client.post("/pipeline/trigger", headers=ADMIN).status_code == 202
    wait_for(lambda: len(calls) == 2)
    assert calls[1] == (1, False)
