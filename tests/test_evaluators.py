"""`mmstar eval` end to end on tiny checkpoints of four real families (CPU, offline)."""

import json
import subprocess
import sys

import pytest
from conftest import assert_clean_error, run_cli
from mmstar.app.cli import main

from mmstar.loaders import load_benchmark
from mmstar.prompts import PromptConfig, build_messages
from mmstar.runs import compute_scores
from mmstar.scoring import score_records

FAMILIES = ["llava", "qwen2-vl", "gemma3", "idefics3"]


def _eval(pair, data, out, *extra):
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                 "--out", str(out), "--no-progress", "--max-new-tokens", "6", *extra])
    assert code == 0
    (run_dir,) = [p.parent for p in out.glob("*/*/manifest.json")]
    return run_dir


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("family", FAMILIES)
def test_requests_carry_the_image_only_in_v(family, tiny_pairs, demo_parquet):
    from mmstar.evaluators.backends.hf import HFBackend

    pair = tiny_pairs[family]
    sample = load_benchmark(demo_parquet)[0]
    vlm = HFBackend(str(pair.vlm), "vlm", device="cpu")
    image_token = vlm.model.config.image_token_id if hasattr(vlm.model.config, "image_token_id") else None
    image_token = image_token if image_token is not None else vlm.model.config.image_token_index
    cfg = PromptConfig()
    v = vlm._encode([vlm._materialise(build_messages(sample, "v", cfg))])
    wv = vlm._encode([vlm._materialise(build_messages(sample, "wv", cfg))])
    assert "pixel_values" in v and image_token in v["input_ids"][0].tolist()
    assert "pixel_values" not in wv and image_token not in wv["input_ids"][0].tolist()
    llm = HFBackend(str(pair.backbone), "llm", device="cpu")
    t = llm._encode([build_messages(sample, "t", PromptConfig(shots=2))])
    assert "pixel_values" not in t and image_token not in t["input_ids"][0].tolist()
    text = llm.tokenizer.decode(t["input_ids"][0])
    assert "You are a helpful assistant" in text and "oepn the door" in text and "Question: " + sample.question in text
    assert type(llm.model).__name__.endswith("ForCausalLM")


@pytest.mark.parametrize("family", FAMILIES)
def test_eval_end_to_end_and_batching_is_invisible(family, tiny_pairs, demo_parquet, tmp_path):
    pair = tiny_pairs[family]
    batched = _eval(pair, demo_parquet, tmp_path / "b8", "--batch-size", "8")
    single = _eval(pair, demo_parquet, tmp_path / "b1", "--batch-size", "1")
    n = len(load_benchmark(demo_parquet))
    for mode in ("v", "wv", "t"):
        a, b = _lines(batched / f"{mode}.jsonl"), _lines(single / f"{mode}.jsonl")
        assert sorted(r["index"] for r in a) == list(range(n))
        assert [r["prediction"] for r in a] == [r["prediction"] for r in b], mode
        assert all(r["error"] is None for r in a)
        for key in ("index", "prediction", "choice", "answer", "hit", "hit_official", "category", "l2_category"):
            assert key in a[0]
    scores = json.loads((batched / "scores.json").read_text())
    for mode in ("v", "wv", "t"):
        proc = run_cli("score", str(batched / f"{mode}.jsonl"), "--json")
        cli = json.loads(proc.stdout)
        assert cli["overall"] == scores[mode]["overall"] and cli["l2_categories"] == scores[mode]["l2_categories"]
    assert scores["MG"] == pytest.approx(scores["S_v"] - scores["S_wv"])
    assert scores["ML"] == pytest.approx(max(0.0, scores["S_wv"] - scores["S_t"]))
    manifest = json.loads((batched / "manifest.json").read_text())
    assert manifest["backends"]["llm"]["model"] == str(pair.backbone)
    assert manifest["backends"]["vlm"]["model"] == str(pair.vlm)
    assert manifest["shots"] == 2 and manifest["decoding"]["max_new_tokens"] == 6


def test_resume_skips_finished_and_refuses_a_changed_run(tiny_pairs, demo_parquet, tmp_path, capsys):
    pair = tiny_pairs["llava"]
    run_dir = _eval(pair, demo_parquet, tmp_path, "--modes", "v", "--limit", "10")
    first = (run_dir / "v.jsonl").read_text()
    # a torn line, as a kill mid-write leaves it
    with open(run_dir / "v.jsonl", "a") as fh:
        fh.write('{"index": 10, "predic')
    run_dir = _eval(pair, demo_parquet, tmp_path, "--modes", "v,wv")
    lines = _lines(run_dir / "v.jsonl")
    assert (run_dir / "v.jsonl").read_text().startswith(first)
    assert sorted(r["index"] for r in lines) == list(range(36))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["modes"]["v"]["done_before"] == 10 and manifest["modes"]["v"]["ran"] == 26
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
                 "--out", str(tmp_path), "--prompt", "letter", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "holds a different run" in err and "prompt: 'official' -> 'letter'" in err and "--overwrite" in err
    _eval(pair, demo_parquet, tmp_path, "--prompt", "letter", "--overwrite", "--modes", "wv", "--limit", "3")
    assert not (run_dir / "v.jsonl").exists() and len(_lines(run_dir / "wv.jsonl")) == 3


@pytest.mark.slow  # tens of seconds: the slow tier (make test-all) runs it
def test_kill_and_resume_gives_one_line_per_index_and_the_same_scores(tiny_pairs, demo_parquet, tmp_path):
    pair = tiny_pairs["llava"]
    args = ["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
            "--batch-size", "1", "--max-new-tokens", "32", "--no-progress"]
    clean = run_cli(*args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mmstar", *args, "--out", str(killed_out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    deadline = time.monotonic() + 120
    target = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(killed_out.glob("*/*/wv.jsonl"))
        if found and found[0].stat().st_size > 0:
            target = found[0]
            break
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert target is not None, "the run finished or never started before the kill"
    run_dir = target.parent
    partial = {m: len((run_dir / f"{m}.jsonl").read_text().splitlines()) if (run_dir / f"{m}.jsonl").exists() else 0
               for m in ("v", "wv", "t")}
    assert partial["v"] == 36 and partial["wv"] < 36 and partial["t"] == 0, partial
    resumed = run_cli(*args, "--out", str(killed_out))
    assert resumed.returncode == 0, resumed.stderr
    (clean_dir,) = [p.parent for p in (tmp_path / "clean").glob("*/*/manifest.json")]
    for mode in ("v", "wv", "t"):
        lines = _lines(run_dir / f"{mode}.jsonl")
        assert sorted(r["index"] for r in lines) == list(range(36))
        ref = {r["index"]: r["prediction"] for r in _lines(clean_dir / f"{mode}.jsonl")}
        assert {r["index"]: r["prediction"] for r in lines} == ref
    a, b = compute_scores(run_dir), compute_scores(clean_dir)
    keys = ("S_v", "S_wv", "S_t", "MG", "ML")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_oom_halves_the_batch(tiny_pairs, demo_parquet, monkeypatch):
    """CUDA memory is the true boundary here: inject OutOfMemoryError for batches over 2."""
    import torch
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.hf import HFBackend

    backend = HFBackend(str(tiny_pairs["llava"].vlm), "vlm", device="cpu")
    sizes = []
    real = backend._generate_batch

    def flaky(convs, *rest):
        sizes.append(len(convs))
        if len(convs) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(convs, *rest)

    monkeypatch.setattr(backend, "_generate_batch", flaky)
    bench = load_benchmark(demo_parquet)
    reqs = [Request(build_messages(s, "wv", PromptConfig())) for s in bench[:7]]
    out = backend.generate(reqs)
    assert len(out) == 7 and all(r.error is None for r in out)
    assert sizes == [7, 3, 1, 2, 4, 2, 2]  # 7 -> 3 + 4 -> (1 + 2) + (2 + 2)


def test_a_pad_token_the_model_emits_does_not_end_the_answer(tiny_pairs, demo_parquet):
    """Only EOS ends an answer (as in vLLM). Here the LM can only emit token 0, made the pad token."""
    import torch
    from mmstar.evaluators.backends.base import GenerationConfig, Request
    from mmstar.evaluators.backends.hf import HFBackend

    backend = HFBackend(str(tiny_pairs["llava"].backbone), "llm", GenerationConfig(max_new_tokens=5), device="cpu")
    with torch.no_grad():
        backend.model.lm_head.weight.zero_()  # all logits equal: greedy picks token 0 every step
    backend.tokenizer.pad_token = backend.tokenizer.convert_ids_to_tokens(0)
    sample = load_benchmark(demo_parquet)[0]
    (out,) = backend.generate([Request(build_messages(sample, "t", PromptConfig(shots=0)))])
    assert out.error is None and out.completion_tokens == 5 and out.text == ""


def test_bad_image_fails_one_request_not_the_batch(tiny_pairs, demo_parquet):
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.hf import HFBackend

    from mmstar.sample import ImageRef

    backend = HFBackend(str(tiny_pairs["llava"].vlm), "vlm", device="cpu")
    bench = load_benchmark(demo_parquet)
    good = build_messages(bench[0], "v", PromptConfig())
    bad = build_messages(bench[1].with_(image=ImageRef(data=b"not an image", origin="x.tsv, row 2")), "v",
                         PromptConfig())
    out = backend.generate([Request(good), Request(bad)])
    assert out[0].error is None and out[1].text == ""
    assert "x.tsv, row 2" in out[1].error and "corrupt" in out[1].error


def test_score_of_run_equals_records(tiny_pairs, demo_parquet, tmp_path):
    run_dir = _eval(tiny_pairs["gemma3"], demo_parquet, tmp_path, "--modes", "wv")
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["S_v"] is None and scores["MG"] is None and scores["ML"] is None
    assert scores["wv"]["overall"] == score_records(_lines(run_dir / "wv.jsonl"))["overall"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--model", "no-such-alias"], ["unknown model 'no-such-alias'", "mmstar models"]),
        (["--model", "llava", "--data", "DATA"], ["llava-hf/llava-1.5-7b-hf", "hub is unreachable"]),
        (["--model", "MODEL", "--modes", "v,t"], ["mode t needs the LLM backbone", "--backbone"]),
        (["--model", "MODEL", "--modes", "v,x"], ["unknown mode(s) 'x'"]),
        (["--model", "MODEL", "--data", "missing.tsv"], ["missing.tsv", "no such file"]),
    ],
)
def test_eval_errors_are_one_line(args, fragments, tiny_pairs, demo_parquet, tmp_path):
    args = [str(tiny_pairs["llava"].vlm) if a == "MODEL" else str(demo_parquet) if a == "DATA" else a for a in args]
    if "--data" not in args:
        args += ["--data", str(demo_parquet)]
    proc = run_cli("eval", *args, "--out", str(tmp_path), env={"HF_HUB_OFFLINE": "1"})
    assert_clean_error(proc, *fragments)


def test_pickle_checkpoints_are_refused_unless_asked(tiny_pairs, demo_parquet, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    src = tiny_pairs["llava"].backbone
    dst = tmp_path / "pickled"
    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    (dst / "model.safetensors").unlink()
    torch.save(weights, dst / "pytorch_model.bin")
    args = ["eval", "--model", str(tiny_pairs["llava"].vlm), "--backbone", str(dst), "--modes", "t",
            "--data", str(demo_parquet), "--limit", "2", "--no-progress"]
    proc = run_cli(*args, "--out", str(tmp_path / "a"))
    assert_clean_error(proc, "no safetensors weights", "--allow-pickle")
    proc = run_cli(*args, "--out", str(tmp_path / "b"), "--allow-pickle")
    assert proc.returncode == 0, proc.stderr


def test_models_listing_imports_no_torch():
    code = ("import sys, io, contextlib; from mmstar.app.cli import main; buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): main(['models'])\n"
            "assert 'torch' not in sys.modules, 'torch imported'; print(buf.getvalue())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for alias in ("llava ", "llava-13b", "qwen2-vl-2b", "qwen2-vl-7b", "qwen2.5-vl-7b", "smolvlm", "gemma3-4b"):
        assert alias in proc.stdout
    assert "llava-hf/llava-1.5-7b-hf" in proc.stdout and "lmsys/vicuna-7b-v1.5" in proc.stdout


def test_tiny_models_command_builds_loadable_checkpoints(tmp_path, demo_parquet):
    proc = run_cli("tiny-models", str(tmp_path), "--family", "llava")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tiny-llava" / "model.safetensors").exists()
    proc = run_cli("eval", "--model", str(tmp_path / "tiny-llava"), "--backbone", str(tmp_path / "tiny-llava-backbone"),
                   "--data", str(demo_parquet), "--limit", "4", "--out", str(tmp_path / "runs"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "S_v" in proc.stdout and "MG" in proc.stdout
