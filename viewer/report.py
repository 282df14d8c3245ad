"""``mmstar report RUN_DIR... --html FILE``: one self-contained HTML file to share.

Figures are inline base64 PNGs and thumbnails inline JPEGs; there is no script and no external
reference, and a Content-Security-Policy forbids fetching anything but ``data:`` images, so the file
opens the same offline. Every piece of run data (names, questions, options, predictions, problem
lines) goes through ``html.escape``: a ``<script>`` in a question is shown as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmstar import taxonomy
from mmstar.atomic import atomic_write_text

from . import charts
from .data import ViewData, load
from .images import Images
from .probes import EVIDENCE_COLUMN, evidence_column, fired_line, probe_rows
from .samples import flags, probes_ran, radar_axes

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ci { color: #777; font-size: 0.85em; white-space: nowrap; }
.problems li { color: #8a4b00; } .text { white-space: pre-wrap; max-width: 32em; }
.pred { white-space: pre-wrap; font-family: ui-monospace, monospace; max-width: 16em; }
.figs img { max-width: 49%; } .note { color: #666; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else _e(value)


def _ci(low: Any, high: Any) -> str:
    return "" if low is None else f'<br><span class="ci">[{_num(low)}, {_num(high)}]</span>'


def _img(data: bytes, mime: str, alt: str, extra: str = "") -> str:
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}" alt="{_e(alt)}"{extra}>'


def leaderboard_html(rows: Sequence[dict[str, Any]]) -> str:
    """The leaderboard as a table; each figure cell names its run and column (``data-run`` /
    ``data-col``) so a reader (or a test) can find it."""
    codes = [c for c in taxonomy.CODES if any(r.get(c) is not None for r in rows)]
    head = ["model", "benchmark", "S_v", "S_wv", "S_t", "MG", "ML (S_wv - S_t)", *codes, "macro", "n", "unparsed v",
            "format v", "format wv", "format t"]
    out = ["<table id=leaderboard><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        run = _e(r.get("run") or f"{r['model']} / {r['benchmark']}")

        def cell(col: str, extra: str = "", run: str = run, r: dict[str, Any] = r) -> str:
            return f'<td class=num data-run="{run}" data-col="{col}">{_num(r.get(col))}{extra}</td>'

        out.append("<tr>" + f"<td>{_e(r['model'])}</td><td>{_e(r['benchmark'])}</td>"
                   + cell("S_v", _ci(r.get("S_v_low"), r.get("S_v_high"))) + cell("S_wv") + cell("S_t")
                   + cell("MG", _ci(r.get("MG_low"), r.get("MG_high")))
                   + cell("ML", _ci(r.get("wv_minus_t_low"), r.get("wv_minus_t_high")))
                   + "".join(cell(c) for c in codes) + cell("macro") + cell("n") + cell("unparsed_v")
                   + "".join(cell(f"format_{m}") for m in ("v", "wv", "t")) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figures(view: ViewData, matcher: str) -> list[tuple[str, bytes]]:
    rows = [r for r in view.leaderboard(matcher) if r.get("run")]
    figs = [("MG vs ML", charts.png(charts.mg_ml_figure(rows)))]
    for bench in view.benchmarks():
        keys = [vr.key for vr in view.runs if vr.benchmark == bench and "v" in vr.modes]
        if not keys:
            continue
        for level, what in (("capability", "capabilities"), ("axis", "axes")):
            labels, series = radar_axes(view, keys, level, "v", matcher)
            if len(labels) >= 3:
                title = f"{bench}: S_v per {level} ({len(labels)} {what}, {matcher} matcher)"
                figs.append((title, charts.png(charts.radar_figure(labels, series, title))))
    return figs


def _leaked_section(view: ViewData, images: Images, matcher: str, limit: int) -> str:
    out = []
    for vr in view.runs:
        if not {"wv", "t"} <= set(vr.modes):
            continue
        leaked = vr.frame[flags(vr.frame, matcher)["leaked"]]
        out.append(f"<h3>{_e(vr.key)}: {len(leaked)} leaked sample(s)</h3>")
        if leaked.empty:
            continue
        out.append("<table class=leaked><tr><th>image</th><th>index</th><th>category / axis</th><th>question</th>"
                   "<th>options</th><th>answer</th><th>wv prediction</th><th>t prediction</th></tr>")
        for row in leaked.head(limit).itertuples(index=False):
            thumb, why = images.thumbnail(vr.run.manifest, int(row.index), row.question)
            pic = _img(thumb, "image/jpeg", f"sample {row.index}") if thumb else f'<span class=note>{_e(why)}</span>'
            out.append(f"<tr><td>{pic}</td><td class=num>{_e(row.index)}</td>"
                       f"<td>{_e(row.category)}<br><span class=note>{_e(row.l2_category)}</span></td>"
                       f"<td class=text>{_e(row.question)}</td><td class=text>{_e(row.options)}</td>"
                       f"<td>{_e(row.answer)}</td><td class=pred>{_e(row.wv_pred)}</td>"
                       f"<td class=pred>{_e(row.t_pred)}</td></tr>")
        out.append("</table>")
        if len(leaked) > limit:
            out.append(f"<p class=note>{len(leaked) - limit} more not listed (raise --max-leaked).</p>")
    return "\n".join(out) or "<p>No run has both wv and t predictions.</p>"


def _p(p: float | None) -> str:
    return "" if p is None else f"{p:.2g}"


def probe_table_html(view: ViewData, matcher: str) -> str:
    """Every run's probe figures (``viewer.probes.probe_rows``); each value cell names its run, probe,
    mode and figure (``data-run`` ... ``data-fig``) so a reader (or a test) can find it."""
    keys = [vr.key for vr in view.runs if vr.run.probe_records]
    if not keys:
        return "<p>No run here has probe records (mmstar eval --probes order,slots,swap).</p>"
    out = ["<ul>" + "".join(f"<li>{_e(fired_line(k, view.probes(k, matcher)))}</li>" for k in keys) + "</ul>",
           "<table id=probes><tr>" + "".join(f"<th>{h}</th>" for h in (
               "run", "probe", "mode", "n", "figure", "value (95% interval)", "flagged samples", "p", "p (Holm)",
               "null", "fires")) + "</tr>"]
    for k in keys:
        for r in probe_rows(k, view.probes(k, matcher)):
            where = f'data-run="{_e(k)}" data-probe="{_e(r["probe"])}" data-mode="{_e(r["mode"])}"'
            flagged = "" if r["flagged"] is None else _num(r["flagged"])
            out.append(f"<tr><td>{_e(k)}</td><td>{_e(r['probe'])}</td><td>{_e(r['mode'])}</td>"
                       f"<td class=num>{_num(r['n'])}</td><td>{_e(r['figure'])}</td>"
                       f'<td class=num {where} data-fig="{_e(r["figure"])}">{_num(r["value"])}'
                       f"{_ci(r['low'], r['high'])}</td><td class=num>{flagged}</td>"
                       f'<td class=num {where} data-p="p">{_p(r["p"])}</td>'
                       f'<td class=num {where} data-p="p_adjusted">{_p(r["p_adjusted"])}</td>'
                       f"<td>{_e(r['null'] or '')}</td><td>{'fires' if r['fires'] else ''}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _evidence_section(view: ViewData, matcher: str, limit: int) -> str:
    """Per run with probes: the samples flagged by a probe that fires (where it fired), with what else
    points at them; the most kinds of evidence first, ML's counting one more."""
    out = []
    for vr in view.runs:
        ran = probes_ran(vr.frame)
        if not ran:
            continue
        frame = vr.frame
        ev = evidence_column(frame, flags(frame, matcher)["leaked"])
        probed = frame[frame[EVIDENCE_COLUMN] != ""]  # a probe that fires flagged it
        ranked = probed.assign(evidence=ev[probed.index]).sort_values(
            "evidence", key=lambda col: -col.str.count(r"\+") - col.str.startswith("ML"), kind="stable")
        both = int(ranked["evidence"].str.startswith("ML+").sum())
        out.append(f"<h3>{_e(vr.key)}: {len(ranked)} sample(s) flagged by a probe that fires, {both} of them by ML "
                   "too</h3>")
        if ranked.empty:
            continue
        out.append("<table class=evidence><tr><th>index</th><th>category / axis</th><th>question</th><th>answer</th>"
                   "<th>evidence</th><th>v prediction</th><th>wv prediction</th></tr>")
        for row in ranked.head(limit).itertuples(index=False):
            out.append(f"<tr><td class=num>{_e(row.index)}</td>"
                       f"<td>{_e(row.category)}<br><span class=note>{_e(row.l2_category)}</span></td>"
                       f"<td class=text>{_e(row.question)}</td><td>{_e(row.answer)}</td>"
                       f'<td data-run="{_e(vr.key)}" data-index="{_e(row.index)}">{_e(row.evidence)}</td>'
                       f"<td class=pred>{_e(row.v_pred)}</td><td class=pred>{_e(row.wv_pred)}</td></tr>")
        out.append("</table>")
        if len(ranked) > limit:
            out.append(f"<p class=note>{len(ranked) - limit} more not listed (raise --max-leaked).</p>")
    return "\n".join(out)


def build_html(view: ViewData, images: Images, matcher: str = "official", max_leaked: int = 100) -> str:
    from mmstar import __version__

    rows = view.leaderboard(matcher)
    problems = "".join(f"<li>{_e(p)}</li>" for p in view.problems)
    figs = "\n".join(_img(data, "image/png", title, f' title="{_e(title)}"') for title, data in _figures(view, matcher))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>mmstar report</title><style>{STYLE}</style></head>
<body>
<h1>mmstar report</h1>
<p class=note>{len(view.runs)} run(s); scores recomputed from the prediction files with the {_e(matcher)} matcher;
95% bootstrap intervals in grey (ML's is that of S_wv - S_t); format: % of replies the official matcher can read.
mmstar {_e(__version__)}, {_e(when)}.</p>
{f'<h2>Problems</h2><ul class=problems>{problems}</ul>' if problems else ''}
<h2>Leaderboard</h2>
{leaderboard_html(rows)}
<h2>Charts</h2>
<div class=figs>{figs}</div>
<h2>Leaked samples</h2>
<p class=note>Right without the image (wv), while the model's own LLM backbone is wrong text-only (t):
the sample-level evidence behind ML.</p>
{_leaked_section(view, images, matcher, max_leaked)}
<h2>Leakage evidence</h2>
<p class=note>Beyond ML: the leakage probes. order rotates every sample's options with the answer moved
(CircularEval: right in every rotation; sensitivity: original-order accuracy minus the rotated mean);
slots hides a wrong option's text and asks the model without the image (wv) and its LLM (t) to write it out;
swap asks each sample with another sample's image of the same capability; backbone compares S_wv with S_t
on the same samples. Each verdict has a p against a stated null (order: the model's own letter preferences
on this benchmark's answer positions; slots: wv against t on the same masks; swap: the backbone's excess
over the chance of its own letter choices; backbone: S_wv against S_t), Holm-adjusted over the run's
verdicts; it fires when the adjusted p is below 0.05. Evidence per sample: ML (right without the image, the
LLM backbone wrong), and each signal that fires and flagged the sample where it fired: order (right in the
original order, wrong in most rotations), slots (the hidden text reproduced), swap (right with another
sample's image, the backbone wrong), backbone (right text-only, the LVLM wrong without the image). A flag of
a signal that does not fire is no evidence.</p>
{probe_table_html(view, matcher)}
{_evidence_section(view, matcher, max_leaked)}
</body></html>
"""


def write_report(paths: Iterable[str | Path], out: Path, data_spec: str | None = None, matcher: str = "official",
                 max_leaked: int = 100, seed: int = 0) -> ViewData:
    """Load the runs, write the report atomically; returns what was loaded (problems included)."""
    from mmstar.errors import MmstarError

    view = load(paths, seed)
    if not view.runs:
        raise MmstarError("no runs to report: " + "; ".join(view.problems))
    if matcher not in view.matchers:
        raise MmstarError(f"matcher {matcher!r} not available here; choose from {', '.join(view.matchers)}")
    atomic_write_text(out, build_html(view, Images(data_spec), matcher, max_leaked))
    return view
