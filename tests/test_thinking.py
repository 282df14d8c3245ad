"""Reasoning models: chat-template switches (enable_thinking) reach the template in the HF backend,
--protocol reasoning / --thinking reach the manifest and the leaderboard, a large --max-new-tokens
runs end to end, and a record keeps the thinking text apart from the answer."""

import csv
import json
import shutil

import pytest
from conftest import run_cli
from mmstar.evaluators.backends.base import GenerationConfig, Request, Response
from mmstar.evaluators.models.registry import ModelEntry
from mmstar.evaluators.run.pipeline import generation_config
from mmstar.evaluators.run.runner import prediction_record

from mmstar.sample import Sample

# appended to the tiny checkpoints' templates: renders differently with enable_thinking, as Qwen3's does
THINK_SWITCH = ("{%- if add_generation_prompt and enable_thinking is defined and enable_thinking is false -%}"
                "{{ ' <think>\n\n</think>\n\n' }}{%- elif add_generation_prompt -%}{{ ' THINK-FREELY' }}{%- endif -%}")
ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def thinking_pair(tiny_pairs, tmp_path_factory):
    root = tmp_path_factory.mktemp("thinking")
    pair = tiny_pairs["llava"]
    out = {}
    for name, src in (("vlm", pair.vlm), ("llm", pair.backbone)):
        dst = root / name
        shutil.copytree(src, dst)
        template = dst / "chat_template.jinja"
        template.write_text(template.read_text() + THINK_SWITCH)
        out[name] = dst
    return out


def _prompt(backend, text="Question: what is shown?"):
    prepared = backend.prepare([Request([{"role": "user", "content": [{"type": "text", "text": text}]}])])
    return backend.tokenizer.decode(prepared.encoded["input_ids"][0], skip_special_tokens=False)


@pytest.mark.parametrize("kind", ["vlm", "llm"])
def test_enable_thinking_reaches_the_chat_template(thinking_pair, kind):
    from mmstar.evaluators.backends.hf import HFBackend

    def prompt(kwargs):
        gen = GenerationConfig(max_new_tokens=2, chat_template_kwargs=kwargs)
        return _prompt(HFBackend(str(thinking_pair[kind]), kind, gen, device="cpu"))

    off, on, default = prompt({"enable_thinking": False}), prompt({"enable_thinking": True}), prompt({})
    assert "<think>" in off and "THINK" not in off.replace("<think>", "").replace("</think>", "")
    assert "THINK-FREELY" in on and "<think>" not in on
    assert default == on  # no switch: the template's own default


def test_protocol_picks_budget_and_thinking_switches():
    entry = ModelEntry("m", "org/m", None, "custom", max_new_tokens=16384, chat_template_kwargs={"x": 1},
                       thinking={"on": {"thinking_mode": "long"}, "off": {"thinking_mode": "none"}})
    official = generation_config(entry, "official", None, None)
    assert (official.max_new_tokens, dict(official.chat_template_kwargs)) == (32, {"x": 1})
    reasoning = generation_config(entry, "reasoning", None, None)
    assert reasoning.max_new_tokens == 16384
    assert dict(reasoning.chat_template_kwargs) == {"x": 1, "thinking_mode": "long"}
    off = generation_config(entry, "reasoning", "off", 4096)
    assert (off.max_new_tokens, off.chat_template_kwargs["thinking_mode"]) == (4096, "none")
    plain = ModelEntry("p", "org/p", None, "custom")
    assert dict(generation_config(plain, "official", "on", None).chat_template_kwargs) == {"enable_thinking": True}
    assert generation_config(plain, "reasoning", None, None).max_new_tokens == 8192
    # the official decoding identity is unchanged by the new field
    assert GenerationConfig().to_dict() == {"max_new_tokens": 32, "temperature": 0.0, "do_sample": False}


def test_record_keeps_thinking_apart_and_matches_the_answer():
    sample = Sample(index=3, question="Q?", options={"A": "red", "B": "blue"}, answer="B", image=None,
                    category="math", l2_category="geometry")
    rec = prediction_record(sample, "t", Response(text="<think>\nA? no, it's blue.\n</think>\n\nB"))
    assert (rec.choice, rec.extract_rule, rec.hit) == ("B", "letter", True)
    assert rec.reasoning == "A? no, it's blue." and rec.to_dict()["reasoning"] == rec.reasoning
    assert rec.prediction.startswith("<think>")  # the raw text stays as generated
    cut = prediction_record(sample, "t", Response(text="<think>\nA? maybe B"))
    assert (cut.choice, cut.extract_rule) == (None, "truncated_reasoning")
    plain = prediction_record(sample, "t", Response(text="B"))
    assert plain.reasoning is None and "reasoning" not in plain.to_dict()  # the line has no such key


@pytest.mark.slow
def test_reasoning_protocol_end_to_end_with_a_large_budget(thinking_pair, demo_parquet, tmp_path):
    common = ("--model", str(thinking_pair["vlm"]), "--backbone", str(thinking_pair["llm"]), "--data",
              str(demo_parquet), "--modes", "wv,t", "--limit", "3", "--no-progress", "--batch-size", "3")
    off = run_cli("eval", *common, "--out", str(tmp_path / "official"), env=ENV)
    assert off.returncode == 0, off.stderr
    big = run_cli("eval", *common, "--out", str(tmp_path / "reasoning"), "--protocol", "reasoning",
                  "--max-new-tokens", "600", env=ENV)
    assert big.returncode == 0, big.stderr
    runs = {}
    for name in ("official", "reasoning"):
        run_dir = next((tmp_path / name).rglob("manifest.json")).parent
        runs[name] = (json.loads((run_dir / "manifest.json").read_text()),
                      [json.loads(x) for x in (run_dir / "t.jsonl").read_text().splitlines()], run_dir)
    man_off, recs_off, dir_off = runs["official"]
    man_r, recs_r, dir_r = runs["reasoning"]
    assert "protocol" not in man_off and man_off["decoding"]["max_new_tokens"] == 32
    assert man_r["protocol"] == "reasoning"
    assert man_r["decoding"] == {"max_new_tokens": 600, "temperature": 0.0, "do_sample": False,
                                 "chat_template_kwargs": {"enable_thinking": True}}
    # a random model rarely stops early: the long budget is really used
    assert max(r["completion_tokens"] for r in recs_r) > 32
    assert all(r["completion_tokens"] <= 32 for r in recs_off)
    lb = tmp_path / "lb.csv"
    done = run_cli("leaderboard", str(dir_off), str(dir_r), "--csv", str(lb), env=ENV)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(lb.open()))
    assert {r["protocol"] for r in rows if r["benchmark"] != "average"} == {"official", "reasoning"}


def test_openai_request_carries_chat_template_kwargs_only_when_set():
    """A loopback server stands in for a vLLM/SGLang endpoint (the external boundary) and records
    the request bodies the openai backend sends."""
    pytest.importorskip("httpx")
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mmstar.evaluators.backends.openai_api import OpenAIBackend

    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            reply = json.dumps({"choices": [{"message": {"content": "<think>x</think>B"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    req = Request([{"role": "user", "content": [{"type": "text", "text": "Q?"}]}])
    try:
        thinking = GenerationConfig(max_new_tokens=4096, chat_template_kwargs={"enable_thinking": True})
        on = OpenAIBackend("m", "vlm", thinking, base_url=url)
        assert on.generate([req])[0].text == "<think>x</think>B"
        OpenAIBackend("m", "vlm", GenerationConfig(), base_url=url).generate([req])
    finally:
        srv.shutdown()
        srv.server_close()
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": True} and bodies[0]["max_tokens"] == 4096
    assert "chat_template_kwargs" not in bodies[1] and bodies[1]["max_tokens"] == 32


def test_leaderboard_averages_official_and_reasoning_rows_apart():
    from mmstar.metrics.leaderboard import COLUMNS, average_rows

    def row(bench, protocol, s_v):
        return {**dict.fromkeys(COLUMNS), "model": "m", "benchmark": bench, "protocol": protocol, "S_v": s_v,
                "S_wv": 40.0, "S_t": 30.0, "macro": s_v, "n": 10, "matcher": "official", "prompt": "official",
                "shots": 2}

    rows = [row("mmstar", "official", 50.0), row("ai2d", "official", 60.0),
            row("mmstar", "reasoning", 70.0), row("ai2d", "reasoning", 90.0)]
    averages = {r["protocol"]: r["S_v"] for r in average_rows(rows)}
    assert averages == {"official": 55.0, "reasoning": 80.0}
