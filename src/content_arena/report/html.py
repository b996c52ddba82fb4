"""The report page: one self-contained HTML file (inline CSS, no scripts, no network) whose images are PNG
files beside it, referenced by relative paths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from content_arena.report.data import ReportData, VersionInfo

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans KR", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: .85rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.champion td { background: #eef7ee; }
.pass { color: #16761b; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.text { max-width: 28rem; word-break: break-all; } .muted { color: #888; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: .85rem; } img { max-width: 100%; height: auto; }
"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(value: Any, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{escape(_fmt(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[str], *, table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(rows)
    return f'<table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "—"


def versions_table(data: ReportData) -> str:
    headers = ["version", "aliases", "status", "mode", "registered", "clean F1", "AUROC", "clean FPR",
               "evasion rate", "attacked-clean FPR"]
    rows = []
    for v in data.versions:
        cls = ' class="champion"' if "champion" in v.aliases else ""
        rows.append(
            f"<tr{cls}>" + _cell(f"v{v.version}") + _cell(", ".join(v.aliases) or None) + _cell(v.status)
            + _cell(v.mode) + _cell(_when(v.created_at)) + _cell(v.metric("clean_f1"), num=True)
            + _cell(v.metric("clean_auroc"), num=True) + _cell(v.metric("clean_fpr"), num=True)
            + _cell(v.metric("evasion_rate"), num=True) + _cell(v.metric("attacked_clean_fpr"), num=True) + "</tr>"
        )
    return table(headers, rows, table_id="versions")


def strategy_table(data: ReportData, versions: Sequence[VersionInfo]) -> str:
    headers = ["strategy"] + [f"v{v.version} evasion" for v in versions] + [f"v{v.version} attacked-clean FPR"
                                                                            for v in versions]
    rows = []
    for name in data.strategies:
        cells = [_cell(name)]
        cells += [_cell(v.metric(f"evasion_rate.{name}"), num=True) for v in versions]
        cells += [_cell(v.metric(f"attacked_clean_fpr.{name}"), num=True) for v in versions]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return table(headers, rows, table_id="per-strategy")


def history_table(data: ReportData) -> str:
    headers = ["started (UTC)", "champion", "battle", "battle rounds", "battle evasion", "gate", "challenger",
               "decision", "challenger status now"]
    rows = []
    for h in data.history:
        gate_cls = "pass" if h.gate == "PASS" else "fail" if h.gate == "FAIL" else ""
        decision_cls = "pass" if h.decision == "promoted" else "fail" if h.decision == "rejected" else ""
        decision = h.decision or ("no challenger (gate passed)" if h.gate == "PASS" else None)
        rows.append(
            "<tr>" + _cell(_when(h.started_at)) + _cell(None if h.champion_version is None else f"v{h.champion_version}")
            + _cell(h.battle_id[:12] if h.battle_id else None) + _cell(h.battle_rounds, num=True)
            + _cell(h.battle_evasion, num=True) + _cell(h.gate, cls=gate_cls)
            + _cell(None if h.challenger_version is None else f"v{h.challenger_version}")
            + _cell(decision, cls=decision_cls) + _cell(h.challenger_status) + "</tr>"
        )
    return table(headers, rows, table_id="history")


def battles_table(data: ReportData, limit: int = 50) -> str:
    headers = ["created (UTC)", "battle", "source", "model", "status", "rounds", "evaded", "evasion rate",
               "strategies"]
    rows = []
    for b in list(reversed(data.battles))[:limit]:
        rows.append(
            "<tr>" + _cell(_when(b.created_at)) + _cell(b.id[:12]) + _cell(b.source)
            + _cell(None if b.model_version is None else f"v{b.model_version}") + _cell(b.status)
            + _cell(b.rounds_completed, num=True) + _cell(b.evaded_count, num=True)
            + _cell(b.evasion_rate, num=True) + _cell(", ".join(b.strategies)) + "</tr>"
        )
    return table(headers, rows, table_id="battles")


def learned_section(data: ReportData) -> str:
    if not data.learned:
        return ('<p class="muted">Nothing to show yet: this needs a version with a battle and a later '
                "version to score its evasions.</p>")
    parts = []
    for entry in data.learned:
        share = f" ({entry.caught / entry.evaded:.0%})" if entry.evaded else ""
        parts.append(f"<h3>v{entry.before} → v{entry.after}</h3>")
        parts.append(f"<p>v{entry.after} flags <b>{entry.caught}</b> of the <b>{entry.evaded}</b> distinct texts "
                     f"that evaded v{entry.before} in {len(entry.battles)} battle(s){share}.</p>")
        if entry.error:
            parts.append(f'<p class="fail">{escape(entry.error)}</p>')
            continue
        if entry.per_strategy:
            rows = [
                "<tr>" + _cell(name) + _cell(evaded, num=True) + _cell(caught, num=True)
                + _cell(caught / evaded if evaded else None, num=True) + "</tr>"
                for name, (evaded, caught) in sorted(entry.per_strategy.items())
            ]
            parts.append(table(["strategy", f"evaded v{entry.before}", f"caught by v{entry.after}", "share"], rows,
                               table_id=f"learned-counts-v{entry.before}"))
        if entry.examples:
            rows = [
                "<tr>" + _cell(e.strategy) + f'<td class="text">{escape(e.original)}</td>'
                + f'<td class="text">{escape(e.attacked)}</td><td class="text"><code>{escape(_visible(e.attacked))}'
                + "</code></td>" + _cell(e.score_before, num=True) + _cell(e.score_after, num=True) + "</tr>"
                for e in entry.examples
            ]
            parts.append(table(["strategy", "original", "attacked (as sent)", "attacked (hidden characters shown)",
                                f"toxic score v{entry.before}", f"toxic score v{entry.after}"], rows,
                               table_id=f"learned-v{entry.before}"))
    return "\n".join(parts)


def calibration_section(data: ReportData) -> str:
    """The champion's threshold, the policy that chose it and its calibration on held-out texts."""
    c = data.calibration
    if c is None:
        return '<p class="muted">No champion scored (no champion yet, or the report was built without examples).</p>'
    if c.error:
        return f'<p class="fail">Could not score v{c.version} on the held-out texts: {escape(c.error)}</p>'
    point = c.operating_point
    if point:
        sign = "&le;" if point.get("metric") == "fpr" else "&ge;"
        policy = f"{escape(str(point.get('metric')))} {sign} {_fmt(point.get('value'), 2)} on validation texts"
    else:
        policy = "none (a stored threshold, not chosen by an operating point)"
    return (f'<p id="calibration">Champion v{c.version}: threshold <b>{_fmt(c.threshold)}</b>, chosen by the policy '
            f"{policy}; calibration {escape(c.calibration)}. On {c.n} held-out clean texts: expected calibration "
            f"error <b>{_fmt(c.ece)}</b>, recall {_fmt(c.recall)}, FPR {_fmt(c.fpr)} at the threshold.</p>")


def _visible(text: str, limit: int = 160) -> str:
    """Show the characters an attacker hides: zero-width and other invisible code points as <U+XXXX>."""
    import unicodedata

    out = []
    for ch in text[:limit]:
        if unicodedata.category(ch) in ("Cf", "Mn", "Zs") and ch != " ":
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out) + ("…" if len(text) > limit else "")


def render(data: ReportData, images: dict[str, str]) -> str:
    """The page; ``images`` maps chart names to file names relative to the page."""
    champion = data.champion
    versions = [v for v in data.versions if v.metrics]
    figures = []
    captions = {
        "evasion": "Evasion rate per strategy × model version, on the loop's held-out adversarial set "
                   "(lower is better).",
        "trend": "Clean F1 and attacked-clean FPR across versions, with the quality gate's limits (dotted).",
        "reliability": "Reliability of the champion's toxic_score on held-out clean texts: the share of toxic "
                       "texts per score bin (texts per bin beside each point); a calibrated model follows the "
                       "diagonal.",
    }
    for key, file in images.items():
        figures.append(f'<figure><img src="{escape(file)}" alt="{escape(captions.get(key, key))}">'
                       f"<figcaption>{escape(captions.get(key, key))}</figcaption></figure>")
    empty = "" if data.versions else (
        '<p class="fail">No model is registered yet: run <code>arena pipeline run</code> first.</p>')
    gate = ", ".join(f"{k} {v}" for k, v in data.gate.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Content Arena robustness report: {escape(data.model_name)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>Robustness report: {escape(data.model_name)}</h1>
<p class="meta">Generated {escape(_when(data.generated_at))} UTC · champion {escape(f"v{champion}" if champion else "—")}
 · {len(data.versions)} version(s) · {len(data.battles)} battle(s) · store {escape(data.store_location)}
 · MLflow {escape(data.tracking_uri)}</p>
{empty}
<p>Evasion rate: among held-out toxic texts a version flags in clean form, the share whose attacked variant it
no longer flags. Attacked-clean FPR: the share of attacked <em>clean</em> texts it flags. Both matter: a model
that flags every garbled text looks robust by evasion rate alone.</p>
<h2>Robustness across versions</h2>
{"".join(figures)}
<h2>Model versions</h2>
{versions_table(data)}
<h2>Operating point and calibration</h2>
{calibration_section(data)}
<h2>Per-strategy evasion and attacked-clean FPR</h2>
{strategy_table(data, versions) if versions and data.strategies else '<p class="muted">No evaluation metrics recorded yet.</p>'}
<h2>Pipeline history: gate decisions and promotions</h2>
<p class="meta">Quality gate: {escape(gate)}</p>
{history_table(data) if data.history else '<p class="muted">No pipeline run recorded in MLflow yet.</p>'}
<h2>Battles</h2>
{battles_table(data) if data.battles else '<p class="muted">No battle yet.</p>'}
<h2>Evasions each version learned to catch</h2>
<p>Rounds that evaded version N in its battles and that version N+1 classifies as toxic.</p>
{learned_section(data)}
</body>
</html>
"""
