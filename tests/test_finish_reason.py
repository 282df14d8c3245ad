"""Why generation stopped (issue 31): every backend records ``finish_reason`` ("stop" | "length" |
null), the prediction record keeps it (schema 3; older lines read null), `mmstar serve` passes the
backend's reason through, and a reply cut by the token budget gives a letter only from an explicit
commitment. Real tiny checkpoints, the real server and the stand-in OpenAI-compatible server."""

import json

import pytest
from conftest import REPO

from mmstar.errors import DataError
from mmstar.matching import extract_answer
from mmstar.records import SCHEMA_VERSION, PredictionRecord, read_records

OPTIONS = {"A": "red", "B": "green", "C": "blue", "D": "yellow"}
LINE_SCHEMA_2 = {"schema": 2, "index": 3, "mode": "v", "prediction": "Option B", "choice": "B", "answer": "B",
                 "hit": True, "hit_official": True, "category": "", "l2_category": "", "source": "", "question": "",
                 "options": OPTIONS, "error": None, "prompt_tokens": 9, "completion_tokens": 2,
                 "extract_rule": "letter"}


def _one_token_model(pair, max_new_tokens: int, stops: bool):
    """The tiny backbone made to emit token 0 at every step; token 0 is its EOS (``stops``) or not."""
    import torch
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.hf import HFBackend

    backend = HFBackend(str(pair.backbone), "llm", GenerationConfig(max_new_tokens=max_new_tokens), device="cpu")
    with torch.no_grad():
        backend.model.lm_head.weight.zero_()  # all logits equal: greedy picks token 0
    other = next(i for i in range(1, 50) if i != backend.tokenizer.pad_token_id)
    backend.model.generation_config.eos_token_id = 0 if stops else other
    return backend


def _request(text="Question: which colour?"):
    from mmstar.evaluators.backends.base import Request

    return Request([{"role": "user", "content": [{"type": "text", "text": text}]}])


def test_hf_backend_says_whether_the_budget_or_the_model_ended_the_reply(tiny_pairs):
    pair = tiny_pairs["llava"]
    (cut,) = _one_token_model(pair, 4, stops=False).generate([_request()])
    assert (cut.finish_reason, cut.completion_tokens) == ("length", 4)
    (done,) = _one_token_model(pair, 4, stops=True).generate([_request()])
    assert (done.finish_reason, done.completion_tokens) == ("stop", 1)


def test_serve_passes_the_backends_reason_and_the_openai_client_records_it(tiny_pairs):
    """`mmstar serve` over the tiny model, the openai backend as its client: the reason the backend
    gave arrives in the client's Response (the budget of the request, or the backend's own)."""
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.openai_api import OpenAIBackend
    from mmstar.evaluators.backends.serve import make_server, serve_in_thread

    pair = tiny_pairs["llava"]
    servers = {"cut": _one_token_model(pair, 3, stops=False), "done": _one_token_model(pair, 3, stops=True)}
    srv = make_server(servers, batch_wait_s=0.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        got = {}
        for name in servers:
            for budget in (2, 3):
                client = OpenAIBackend(name, "llm", GenerationConfig(max_new_tokens=budget), base_url=url)
                (resp,) = client.generate([_request()])
                client.close()
                assert resp.error is None, resp.error
                got[name, budget] = (resp.finish_reason, resp.completion_tokens)
        assert got == {("cut", 2): ("length", 2), ("cut", 3): ("length", 3), ("done", 2): ("stop", 1),
                       ("done", 3): ("stop", 1)}
        # a request without max_tokens: the backend's own budget cut it, and the server says so
        import httpx

        body = {"model": "cut", "messages": [{"role": "user", "content": "Question: which colour?"}]}
        reply = httpx.post(f"{url}/chat/completions", json=body, timeout=60).json()
        assert reply["choices"][0]["finish_reason"] == "length" and reply["usage"]["completion_tokens"] == 3
    finally:
        stop()


def test_a_cut_reply_from_the_standin_is_recorded_and_reads_no_letter(standin, tmp_path):
    """Through the real run loop: the stand-in answers a share of requests as cut by the budget
    ("... Option B", finish_reason length). Those lines carry finish_reason "length" and no letter;
    the others read as their letter."""
    import mmstar

    url = standin("--fast-ms-low", "1", "--fast-ms-high", "3", "--slow-share", "0", "--length-share", "0.5")
    result = mmstar.evaluate("standin-vlm", data=REPO / "data" / "demo" / "test.parquet", modes=["v"], limit=40,
                             out=tmp_path, backend="openai", base_url=url, progress=False)
    lines = [json.loads(x) for x in (result.run_dir / "v.jsonl").read_text().splitlines()]
    by_reason = {r: [x for x in lines if x.get("finish_reason") == r] for r in ("stop", "length")}
    assert len(by_reason["stop"]) + len(by_reason["length"]) == 40 and all(by_reason.values())
    for line in by_reason["length"]:
        assert line["prediction"].startswith("Let me compare") and line["choice"] is None
        assert line["extract_rule"] == "cut_off" and line["schema"] == SCHEMA_VERSION
    assert all(x["choice"] == x["prediction"] for x in by_reason["stop"])
    # the same text, had the model stopped there, would read as the option it ends on
    text = by_reason["length"][0]["prediction"]
    assert extract_answer(text, OPTIONS).choice == text[-1]
    assert extract_answer(text, OPTIONS, finish_reason="length").choice is None
    # re-scored from the file, the records keep their reason
    assert {r.finish_reason for r in read_records(result.run_dir / "v.jsonl")} == {"stop", "length"}


@pytest.mark.parametrize(("reply", "stop", "length"), [
    ("Let me compare the options one by one. Option B", "B", None),  # the last option it mentioned
    ("The sky is clearly visible. D", "D", None),
    ("B. The image shows a field of green grass with a few", "B", "B"),  # answer first: explicit
    ("The answer is C because the sky in the upper part of the", "C", "C"),
    ("\\boxed{D} since the", "D", "D"),
    ('{"answer": "A", "reason": "the car is', "A", "A"),
    ("It is blue, I think, and the sky", "C", None),  # an option's text, never said to be the answer
    ("The answer is c", "C", None),  # "c" may be the start of "correct"
    ("B", "B", "B"),  # a one-token budget: the letter is the whole reply
    ("Option A s", "A", None),  # "Option A s|eems": no bare letter once cut
])
def test_a_cut_reply_reads_only_explicit_commitments(reply, stop, length):
    assert extract_answer(reply, OPTIONS, finish_reason="stop").choice == stop
    assert extract_answer(reply, OPTIONS).choice == stop  # unknown reason: read as before
    got = extract_answer(reply, OPTIONS, finish_reason="length")
    assert got.choice == length and (got.rule == "cut_off") == (length is None)


def test_a_reply_left_hanging_reads_as_cut_when_the_reason_is_unknown():
    """Old runs and imported logs carry no finish_reason: a reply ending on a dangling word ("... but",
    "... and the", a comma) was cut, so it too is read for explicit commitments only."""
    hanging = "Let me analyze option A first. Red appears in the corner, but"
    assert extract_answer(hanging, OPTIONS).choice is None
    assert extract_answer(hanging, OPTIONS, finish_reason="stop").choice == "A"  # known to have ended there
    assert extract_answer("The answer is A", OPTIONS).choice == "A"  # a final capital A is a letter, not "a"


def test_records_keep_the_reason_and_older_schemas_read_null(tmp_path):
    assert SCHEMA_VERSION == 3
    old = PredictionRecord.from_dict(LINE_SCHEMA_2)
    assert old.finish_reason is None and "finish_reason" not in old.to_dict()  # unknown stays unwritten
    new = PredictionRecord.from_dict({**LINE_SCHEMA_2, "schema": 3, "finish_reason": "length"})
    assert new.finish_reason == "length" and json.loads(new.to_json())["finish_reason"] == "length"
    assert PredictionRecord.from_dict(json.loads(new.to_json())) == new
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(LINE_SCHEMA_2) + "\n" + json.dumps({**LINE_SCHEMA_2, "index": 4,
                                                                  "finish_reason": "truncated"}) + "\n")
    with pytest.raises(DataError, match=r"v.jsonl.*2.*finish_reason 'truncated'"):
        read_records(path)


def test_scores_read_a_cut_reply_as_unparsed():
    """The scorer hands the record's reason to the extractor (and its memo keeps them apart)."""
    from mmstar.scoring import Assessor, assess

    line = {**LINE_SCHEMA_2, "prediction": "Let me compare the options. Option B", "schema": 3}
    stopped = PredictionRecord.from_dict({**line, "finish_reason": "stop"})
    cut = PredictionRecord.from_dict({**line, "finish_reason": "length"})
    assert assess(stopped).extraction.choice == "B" and assess(cut).extraction.choice is None
    memo = Assessor()
    assert [memo(r).robust for r in (stopped, cut, stopped)] == [True, False, True]


@pytest.mark.parametrize(("given", "recorded"), [
    ("stop", "stop"), ("length", "length"), ("eos", "stop"), ("stop_sequence", "stop"), ("end_turn", "stop"),
    ("tool_calls", "stop"), ("max_tokens", "length"), ("content_filter", None), ("abort", None), (None, None),
    (7, None),
])
def test_server_and_engine_reasons_map_to_stop_length_or_unknown(given, recorded):
    """What vLLM (``CompletionOutput.finish_reason``), OpenAI-style servers, TGI and Anthropic-style
    APIs call the two reasons; anything else says nothing about where the text ends."""
    from mmstar.evaluators.backends.base import finish_reason
    from mmstar.evaluators.backends.openai_api import parse_reply

    assert finish_reason(given) == recorded

    class Reply:  # the httpx response parse_reply reads (json() and text)
        text = ""

        @staticmethod
        def json():
            return {"choices": [{"finish_reason": given, "message": {"content": "B"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

    if given != "content_filter":  # a withheld answer is an error, tested with the pool
        assert parse_reply(Reply()).finish_reason == recorded
