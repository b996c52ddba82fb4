"""The robustness report: built from a real tiny loop's store and registry, then opened in headless Chromium.

The Chromium check needs /usr/bin/chromium (Debian: ``apt-get install -y chromium``); without it that one
test skips and says so.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.configs import TINY

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("ARENA_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(home: Path) -> Any:
    from content_arena.config import load_config

    return load_config(None, home=str(home), **{k: dict(v) for k, v in TINY.items()})


@pytest.fixture(scope="module")
def loop_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny loop (the tiny_config of conftest, module-scoped so it runs once), then its report."""
    from content_arena.orchestrator import run_pipeline
    from content_arena.report import build_report

    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        for key in list(os.environ):
            if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
                mp.delenv(key)
        cfg = _config(base / ".arena")
        summary = run_pipeline(cfg).to_dict()
        path = build_report(cfg, base / "out")
    return {"cfg": cfg, "summary": summary, "path": path, "html": path.read_text(encoding="utf-8")}


def test_report_has_charts_beside_it_and_tables(loop_report: dict[str, Any]) -> None:
    path: Path = loop_report["path"]
    page: str = loop_report["html"]
    summary = loop_report["summary"]
    assert path.name == "index.html" and path.is_file()

    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == ["evasion_by_strategy.png", "quality_by_version.png", "reliability.png"]
    for name in sources:
        image = path.parent / name
        assert image.is_file() and image.read_bytes()[:8] == PNG_MAGIC, name
        assert "/" not in name  # relative, beside the page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained

    # the champion's policy threshold and the calibration of its scores on the held-out texts
    calibration = html.unescape(page.split('<p id="calibration">')[1].split("</p>")[0])
    assert re.search(r"threshold \d\.\d{3}, chosen by the policy fpr ≤ 0\.10 on validation texts", re.sub("<[^>]+>", "", calibration))
    assert re.search(r"expected calibration error \d\.\d{3}", re.sub("<[^>]+>", "", calibration))
    for table_id in ("versions", "per-strategy", "history", "battles"):
        assert f'<table id="{table_id}">' in page, table_id
    versions = 2 if summary["challenger"] else 1
    versions_table = page.split('<table id="versions">')[1].split("</table>")[0]
    assert versions_table.count("<tr") == versions + 1  # header + one row per version
    for strategy in loop_report["cfg"].attack.strategies:
        assert f"<td>{strategy}</td>" in page
    history = page.split('<table id="history">')[1].split("</table>")[0]
    assert summary["gate"]["decision"] in history
    assert summary["battle"]["battle_id"][:12] in history
    if summary["challenger"]:
        assert ("promoted" if summary["promoted"] else "rejected") in history
        # v1's battle evasions scored by v2: the counts line is there whatever the tiny model learned.
        assert "v1 → v2" in html.unescape(page)
        assert re.search(r"v2 flags <b>\d+</b> of the <b>\d+</b> distinct texts that evaded v1", page)


def test_report_opens_in_headless_chromium(loop_report: dict[str, Any], tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"chromium is not installed ({CHROMIUM}); apt-get install -y chromium")
    path: Path = loop_report["path"]
    # A copy of the page beside the original (so relative images resolve) with a probe that writes what
    # the browser loaded into the DOM.
    probe = path.with_name("probe.html")
    script = """<script>
window.addEventListener('load', function () {
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    images: Array.from(document.images).map(function (i) {
      return {src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight}; }),
    tables: Array.from(document.querySelectorAll('table')).map(function (t) {
      return {id: t.id, rows: t.tBodies.length ? t.tBodies[0].rows.length : 0}; })
  });
  document.body.appendChild(out);
});
</script>"""
    probe.write_text(loop_report["html"].replace("</body>", script + "\n</body>"), encoding="utf-8")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run; chromium said: {done.stderr[-1500:]}"
    result = json.loads(html.unescape(found.group(1)))

    assert sorted(i["src"] for i in result["images"]) == ["evasion_by_strategy.png", "quality_by_version.png",
                                                          "reliability.png"]
    for image in result["images"]:
        assert image["width"] > 100 and image["height"] > 100, image  # decoded, not a broken icon
    tables = {t["id"]: t["rows"] for t in result["tables"]}
    assert tables["versions"] >= 1 and tables["per-strategy"] == len(loop_report["cfg"].attack.strategies)
    assert tables["history"] >= 1 and tables["battles"] >= 1


def test_report_on_an_empty_home_says_what_to_do(tiny_config: Any, tmp_path: Path) -> None:
    from content_arena.report import build_report

    path = build_report(tiny_config(), tmp_path / "empty-report", with_examples=False)
    page = path.read_text(encoding="utf-8")
    assert "arena pipeline run" in page
    assert "<img" not in page and not list(path.parent.glob("*.png"))


def test_arena_report_command_prints_the_path(loop_report: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from content_arena.cli import app

    cfg = loop_report["cfg"]
    config_file = tmp_path / "arena.yaml"
    config_file.write_text(yaml.safe_dump({"home": cfg.home, **{k: dict(v) for k, v in TINY.items()}}))
    for key in list(os.environ):
        if key.startswith("ARENA_") and not key.startswith("ARENA_TEST"):
            monkeypatch.delenv(key)
    out = tmp_path / "cli-report"
    result = CliRunner().invoke(app, ["report", "--config", str(config_file), "--out", str(out), "--no-examples"])
    assert result.exit_code == 0, result.output
    assert str(out / "index.html") in result.output
    assert (out / "index.html").is_file() and (out / "evasion_by_strategy.png").is_file()
