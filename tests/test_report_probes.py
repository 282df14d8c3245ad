"""``mmstar report``'s "Leakage evidence" section (issue 21.2): the probe table (each figure with its
interval, flagged samples, p, Holm's p, null, fires) and the samples a probe flagged with what else points at them;
run data shown as escaped text, never as HTML. The run is ``test_view_probes``'s (written by the
runner's own probe records), with a ``<script>`` in one question."""

import html
import json
import re

from mmstar.app.cli import main
from test_view_probes import EVIDENCE, SCRIPT, write_probe_run


def _section(text):
    return text.split("<h2>Leakage evidence</h2>", 1)[1]


def test_report_has_the_leakage_evidence_section(tmp_path):
    run_dir = write_probe_run(tmp_path, html=True)
    plain = write_probe_run(tmp_path / "plain", model="plain", probes=False)
    out = tmp_path / "report.html"
    assert main(["report", str(run_dir), str(plain), "--html", str(out)]) == 0
    text = out.read_text()
    assert "<h2>Leakage evidence</h2>" in text
    section = _section(text)
    block = json.loads((run_dir / "scores.json").read_text())["probes"]
    fired = block["fired"]
    assert "swap" in fired
    assert html.escape(f"leaky / mini: fires: {', '.join(fired)}") in section
    rows_per_mode = {"order": 2, "slots": 1, "swap": 3, "backbone": 3}  # the figures each signal shows per mode
    assert section.count("<td>fires</td>") == sum(rows_per_mode[p] for p in rows_per_mode
                                                  for fig in block[p].values() if fig["fires"])
    # every figure of the block, with its interval, found by run / probe / mode / figure
    for probe, fig_key, label in (("order", "circular", "CircularEval accuracy"),
                                  ("order", "sensitivity", "order sensitivity (original - rotated)"),
                                  ("slots", "rate", "masked text reproduced"), ("swap", "excess", "S_swap over chance"),
                                  ("swap", "image_dependence", "image dependence (S_v - S_swap)")):
        for mode, fig in block[probe].items():
            cell = re.search(rf'data-run="leaky / mini" data-probe="{probe}" data-mode="{mode}" '
                             rf'data-fig="{re.escape(html.escape(label))}">([-\d.]+)<br><span class="ci">'
                             r"\[([-\d.]+), ([-\d.]+)\]", section)
            assert cell, (probe, mode, label)
            assert cell.groups() == (f"{fig[fig_key]:.2f}", f"{fig[f'{fig_key}_low']:.2f}",
                                     f"{fig[f'{fig_key}_high']:.2f}"), (probe, mode)
    # each verdict's p and Holm-adjusted p, with its null, on the row of the figure it tests
    for probe, per_mode in block.items():
        for mode, fig in per_mode.items() if isinstance(per_mode, dict) else ():
            where = f'data-run="leaky / mini" data-probe="{probe}" data-mode="{mode}"'
            assert f'{where} data-p="p">{fig["p"]:.2g}</td>' in section, (probe, mode)
            assert f'{where} data-p="p_adjusted">{fig["p_adjusted"]:.2g}</td><td>{fig["null"]}</td>' in section
    assert "plain / mini" not in section  # no probe ran there: no rows, no flagged samples
    # the flagged samples: the ones ML flags too come first, each with its evidence
    marks = dict(re.findall(r'data-run="leaky / mini" data-index="(\d+)">([^<]*)</td>', section))
    assert {int(i): e for i, e in marks.items() if int(i) in EVIDENCE} == EVIDENCE
    # most kinds of evidence first, ML's counting one more; ties in sample order
    assert list(marks) == ["2", "6", "10", "0", "1", "3", "5", "7", "8", "9", "4", "11"]
    assert marks["3"] == "slots+swap"  # drops when moved in v, where order does not fire: no order evidence
    assert marks["1"] == "slots+swap"  # wv wrong on 1: not leaked, yet it wrote out the hidden option
    # flagged by a probe that fires: all (4 by order alone, 11 by slots alone); by ML too: 2, 6, 10
    assert "leaky / mini: 12 sample(s) flagged by a probe that fires, 3 of them by ML too" in section
    # run data is text: the question's <script> is escaped wherever it appears
    assert "<script" not in text and "<b>" not in text and html.escape(SCRIPT) in section


def test_report_without_probes_says_so(tmp_path):
    plain = write_probe_run(tmp_path, model="plain", probes=False)
    out = tmp_path / "report.html"
    assert main(["report", str(plain), "--html", str(out)]) == 0
    assert "No run here has probe records" in _section(out.read_text())
