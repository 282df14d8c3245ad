"""The answer-text recall probe (mmstar/probe_recall.py, evaluators/run/recall.py): its variants, its
null and p-value on planted outcomes, its records, and runs through the real pipeline on the bundled
demo models (hf), resumed, and refused on a backend that cannot score."""

import json
import random

import pytest
from conftest import REPO, assert_clean_error, run_cli
from mmstar.evaluators.backends.base import Response
from mmstar.evaluators.run.recall import recall_record

import mmstar
from mmstar.probe_recall import (
    NULL,
    donors,
    one_sided_mcnemar,
    ranked_first,
    recall_figures,
    recall_items,
    recall_stem,
    right_first,
)
from mmstar.probes import sample_flags
from mmstar.sample import Benchmark, Sample

DEMO = REPO / "data" / "demo" / "test.parquet"
DEMO_MODELS = REPO / "data" / "demo-models"


def _sample(index, options, answer="A", axis="recognition", question=None):
    body = ", ".join(f"{k}: {v}" for k, v in options.items())
    return Sample(index=index, question=question or f"Picture {index}. What is it?\nOptions: {body}",
                  options=options, answer=answer, category="fine-grained perception", l2_category=axis)


def test_stems_and_donors():
    ok = _sample(1, {"A": "red", "B": "blue"})
    assert recall_stem(ok) == "Picture 1. What is it?"
    assert recall_stem(_sample(2, {"A": "Red", "B": "red."})) is None  # the answer's text repeated
    assert recall_stem(_sample(3, {"A": "nan", "B": "red"})) is None
    assert recall_stem(_sample(4, {"A": "red"})) is None
    samples = [_sample(i, {"A": "red", "B": "blue"}, axis="ab"[i % 2]) for i in range(10)]
    samples.append(_sample(10, {"A": "red", "B": "blue"}, axis="lone"))
    bench = Benchmark("b", samples)
    pick = donors(bench, 0)
    assert pick == donors(bench, 0) and pick != donors(bench, 1)  # seeded, deterministic
    assert all(d != i for i, d in pick.items())
    assert all(samples[i].l2_category == samples[d].l2_category for i, d in pick.items() if i != 10)
    assert 10 not in pick  # the capability's only other samples are all in axes of their own: none left
    items = recall_items(bench, "wv", 0)
    assert len(items) == 2 * len(pick)
    own = {it.sample.index: it for it in items if it.fields["variant"] == "own"}
    donor = {it.sample.index: it for it in items if it.fields["variant"] == "donor"}
    for i, d in pick.items():
        assert own[i].prompt.startswith(f"Picture {i}. What is it?\n") and "Options" not in own[i].prompt
        assert donor[i].prompt.startswith(f"Picture {d}. ") and donor[i].fields["stem_from"] == d
        assert donor[i].key == f"{i}:donor" and own[i].key == f"{i}:own"


def test_ties_rank_nothing_first():
    assert ranked_first({"A": -1.0, "B": -1.0, "C": -3.0}) is None
    assert ranked_first({"A": -1.0, "B": -0.5}) == "B"


def _planted(n, own_rate, donor_rate, options_rate, seed):
    rng = random.Random(seed)
    draw = lambda rate: {i: rng.random() < rate for i in range(n)}  # noqa: E731
    return draw(own_rate), draw(donor_rate), draw(options_rate)


def test_the_null_and_its_p_on_planted_outcomes():
    k = dict.fromkeys(range(360), 4)
    # clean: recall no better than the text prior or the options -> p large in almost every seed
    def p_of(own, donor, shown):  # the figure's p without its intervals (200 bootstraps would take a minute)
        return max(one_sided_mcnemar(own, donor)[2], one_sided_mcnemar(own, shown)[2])

    clean = [p_of(*_planted(360, 0.25, 0.25, 0.25, s)) for s in range(200)]
    assert sum(p < 0.05 for p in clean) <= 10, "false alarms above 5% on 200 clean draws"
    assert recall_figures(*_planted(360, 0.25, 0.25, 0.25, 3), k)["p"] == clean[3]
    # leaked texts: recall far above both
    leak = recall_figures(*_planted(360, 0.75, 0.25, 0.30, 0), k)
    assert leak["fires"] and leak["p"] < 1e-6 and leak["null"] == NULL and leak["p_adjusted"] == leak["p"]
    assert leak["over_donor_low"] > 0 and leak["over_options_low"] > 0 and leak["chance"] == 25.0
    # text-answerable questions: recall high, but the options are answered as well -> the IUT holds back
    own, donor, _ = _planted(360, 0.75, 0.25, 0.0, 1)
    answerable = recall_figures(own, donor, dict(own), k)
    assert answerable["p_donor"] < 1e-6 and answerable["p_options"] == 1.0 and not answerable["fires"]
    # the one-sided test: a deficit is no evidence
    assert one_sided_mcnemar({1: False, 2: False}, {1: True, 2: True})[2] == 1.0
    assert one_sided_mcnemar(dict.fromkeys(range(10), True), dict.fromkeys(range(10), False))[2] == 2 ** -10


def test_records_keep_the_scores_and_rejudge_from_them():
    s = _sample(7, {"A": "red", "B": "dark blue", "C": "green"}, answer="B")
    (item,) = [it for it in recall_items(Benchmark("b", [s, _sample(8, {"A": "x y", "B": "z"})]), "t")
               if it.sample.index == 7 and it.fields["variant"] == "own"]
    rec = recall_record(item, Response(extra={"loglik": [-3.0, -2.0, -2.5], "tokens": [1, 2, 1]}))
    assert rec.extra["loglik"] == {"A": -3.0, "B": -2.0, "C": -2.5} and rec.extra["tokens"]["B"] == 2
    assert rec.choice == "B" and rec.prediction == "B" and rec.hit  # means: -3, -1, -2.5
    assert right_first(rec) is True
    rec.extra["loglik"]["A"] = -0.5  # a record is re-judged from its scores, never from `hit`
    assert right_first(rec) is False
    short = recall_record(item, Response(extra={"loglik": [-1.0], "tokens": [1]}))
    assert short.error == "the backend scored 1 of 3 option texts" and right_first(short) is None
    failed = recall_record(item, Response(error="boom"))
    assert failed.error == "boom" and failed.choice is None and right_first(failed) is None


def test_recall_runs_on_the_demo_models_and_resumes(tmp_path):
    kwargs = dict(data=DEMO, backbone=str(DEMO_MODELS / "base"), modes=["wv", "t"], limit=18, out=tmp_path,
                  shots=0, max_new_tokens=4, batch_size=16, progress=False, probes=["recall"])
    result = mmstar.evaluate(str(DEMO_MODELS / "clean"), **kwargs)
    run_dir = result.run_dir
    block = result.scores["probes"]
    assert block["fired"] == [] or "recall" in block["fired"]
    for mode in ("wv", "t"):
        fig = block["recall"][mode]
        assert fig["n"] == 18 and fig["null"] == NULL and 0 <= fig["p"] <= 1 and fig["fires"] == (fig["p"] < 0.05)
        assert fig["rate_low"] <= fig["rate"] <= fig["rate_high"] and fig["chance"] == 25.0
        lines = [json.loads(x) for x in (run_dir / f"recall-{mode}.jsonl").read_text().splitlines()]
        assert len(lines) == 36 and len({r["key"] for r in lines}) == 36
        assert all(not r["error"] and set(r["loglik"]) == set(r["options"]) for r in lines)
    before = {m: (run_dir / f"recall-{m}.jsonl").read_text() for m in ("wv", "t")}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["probes"]["files"]["recall-wv"]["ran"] == 36 and "recall" in manifest["probes"]["prompts"]
    # a torn run: cut the last half of one file; the resumed run scores only what is missing
    lines = before["wv"].splitlines(keepends=True)
    (run_dir / "recall-wv.jsonl").write_text("".join(lines[:20]))
    again = mmstar.evaluate(str(DEMO_MODELS / "clean"), **kwargs)
    stats = json.loads((run_dir / "manifest.json").read_text())["probes"]["files"]
    assert stats["recall-wv"]["done_before"] == 20 and stats["recall-wv"]["ran"] == 16
    assert stats["recall-t"]["ran"] == 0
    # the same lines (a batch of other rows moves a score in its last float digits, no more)
    old = {r["key"]: r for r in map(json.loads, before["wv"].splitlines())}
    new = {r["key"]: r for r in map(json.loads, (run_dir / "recall-wv.jsonl").read_text().splitlines())}
    assert new.keys() == old.keys()
    for key, rec in new.items():
        assert rec["loglik"] == pytest.approx(old[key]["loglik"], abs=1e-4) and rec["tokens"] == old[key]["tokens"]
    assert again.scores["probes"]["recall"]["t"] == block["recall"]["t"]
    flags = sample_flags(mmstar.open_run(run_dir))
    assert sum(f.get("recalls_answer_text", False) for f in flags.values()) >= block["recall"]["wv"]["recalled"]


def test_a_backend_that_cannot_score_is_refused_before_loading(tmp_path):
    proc = run_cli("eval", "--model", "some-vlm", "--backbone", "some-lm", "--backend", "openai", "--base-url",
                   "http://127.0.0.1:9/v1", "--data", str(DEMO), "--modes", "wv,t", "--probes", "recall",
                   "--limit", "4", "--no-progress", "--out", str(tmp_path))
    assert_clean_error(proc, "probe recall", "the openai backend cannot", "--backend hf or vllm")
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing ran


def test_the_text_leak_fires_recall_and_its_flags_are_leakage_evidence(tmp_path):
    """The shipped text-leak demo model (scripts/train_demo_leaks.py): recall fires in wv on the first
    36 samples, and the leaked-sample list names recall as evidence exactly where it flagged (before
    probe_scores.probe_figure, metrics/leakage scored any probe after slots as swap)."""
    from mmstar.metrics.leakage import firing_flags, leakage_rows

    result = mmstar.evaluate(str(DEMO_MODELS / "text-leak"), data=DEMO, backbone=str(DEMO_MODELS / "base"),
                             modes=["wv", "t"], limit=36, out=tmp_path, shots=0, max_new_tokens=4, batch_size=16,
                             progress=False, probes=["recall"])
    fig = result.scores["probes"]["recall"]["wv"]
    assert fig["fires"] and fig["p"] < 0.005 and fig["rate"] > fig["donor_rate"] + 30, fig
    assert result.scores["probes"]["fired"] == ["recall"]
    run = mmstar.open_run(result.run_dir)
    flagged = {i for i, f in sample_flags(run).items() if f.get("recalls_answer_text")}
    assert flagged and {i for i, probes in firing_flags(run).items() if "recall" in probes} <= flagged
    rows = leakage_rows(run)
    assert rows and all(("recall" in r["evidence"]) == (r["index"] in flagged) for r in rows)


def test_run_options_refuse_recall_on_a_backend_without_scoring():
    """Checked with the options (so sweeps and sweep files refuse it before their first model too)."""
    from mmstar.evaluators.run.pipeline import RunOptions

    from mmstar.errors import MmstarError

    with pytest.raises(MmstarError, match=r"probe recall .* the openai backend cannot"):
        RunOptions.from_mapping({"backend": "openai", "probes": "recall", "modes": "wv,t", "base_url": "http://x/v1"})
    assert RunOptions.from_mapping({"backend": "openai", "probes": "order", "modes": "wv,t",
                                    "base_url": "http://x/v1"}).probes == ("order",)
    assert RunOptions.from_mapping({"backend": "hf", "probes": "recall", "modes": "wv,t"}).probes == ("recall",)
