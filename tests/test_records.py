"""The typed run records (``mmstar.records``): JSON round trips, unknown keys kept, schema versions,
and one clear error per bad line or field, naming the file and the row."""

import json

import pytest

from mmstar.errors import DataError
from mmstar.records import (
    SCHEMA_0_1_0,
    SCHEMA_VERSION,
    Manifest,
    ModeStats,
    PredictionRecord,
    append_records,
    as_record,
    read_records,
    write_records,
)
from mmstar.runs import open_run, prune_errors, read_manifest, write_manifest
from mmstar.scoring import score_records

OPTIONS = {"A": "red", "B": "blue"}
LINE_0_1_0 = {"index": 3, "mode": "v", "prediction": "B", "choice": "B", "answer": "B", "hit": True,
              "hit_official": True, "category": "math", "l2_category": "geometry", "source": "demo",
              "question": "Colour?\nOptions: A: red, B: blue", "options": OPTIONS, "error": None,
              "prompt_tokens": 12, "completion_tokens": 1, "extract_rule": "letter"}


def _full_record() -> PredictionRecord:
    rec = PredictionRecord(index=7, mode="t", prediction="<think>hm</think>B", answer="B", choice="B", hit=True,
                           hit_official=False, category="math", l2_category="geometry", source="demo",
                           question="Colour?", options=dict(OPTIONS), error=None, prompt_tokens=40,
                           completion_tokens=9, extract_rule="letter", reasoning="hm", logprobs={"A": -2.5},
                           peer_score=1.0, extra={"my_note": [1, {"x": None}]})
    rec.set_judge("B it is", "B", audit=True)
    return rec


def test_prediction_record_round_trip():
    rec = _full_record()
    line = rec.to_json()
    back = PredictionRecord.from_dict(json.loads(line))
    assert back == rec and back.to_json() == line
    assert json.loads(line)["schema"] == SCHEMA_VERSION and back.schema == SCHEMA_VERSION
    # a judge that named no option: judge_choice is written as null, and read back as judged
    rec.set_judge("none of them", None)
    again = PredictionRecord.from_dict(json.loads(rec.to_json()))
    assert again.judge_seen and again.judge_choice is None and "judge_choice" in again.to_dict()
    rec.clear_judge()
    assert not {"judge", "judge_choice", "judge_audit"} & set(rec.to_dict())


def test_a_0_1_0_line_reads_as_schema_1_and_rewrites_unchanged_but_for_the_schema(tmp_path):
    rec = PredictionRecord.from_dict(LINE_0_1_0)
    assert rec.schema == SCHEMA_0_1_0 and rec.extra == {} and not rec.judge_seen
    written = rec.to_dict()
    assert written.pop("schema") == SCHEMA_VERSION
    assert written == LINE_0_1_0 and list(written) == list(LINE_0_1_0)  # same keys, same order
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(LINE_0_1_0) + "\n")
    assert read_records(path) == [rec]


def test_unknown_keys_survive_rewrites(tmp_path):
    newer = {**LINE_0_1_0, "schema": SCHEMA_VERSION + 1, "probe": {"order": "BA"}, "user_tag": "keep me"}
    failed = {**LINE_0_1_0, "index": 4, "error": "timeout", "prediction": ""}
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(newer) + "\n" + json.dumps(failed) + "\n")
    assert prune_errors(path) == 1  # a rewrite of the file: the failed line goes, the rest stays whole
    (line,) = path.read_text().splitlines()
    assert json.loads(line) == newer  # a newer version's keys and its schema number are kept
    rec = read_records(path)[0]
    assert rec.extra == {"probe": {"order": "BA"}, "user_tag": "keep me"} and rec.schema == SCHEMA_VERSION + 1
    write_records(path, [rec])
    append_records(path, [PredictionRecord.from_dict(failed)])
    first, second = read_records(path)
    assert first.to_dict() == newer and second.error == "timeout"


def test_manifest_round_trip_keeps_unknown_keys_and_nulls(tmp_path):
    data = {"model": "m", "backbone": None, "backend": "hf", "prompt": "official", "shots": 0,
            "decoding": {"max_new_tokens": 32}, "dataset_fingerprint": "f", "model_label": "M", "benchmark": "b",
            "n_samples": 3, "created": "2026-01-01T00:00:00+00:00",
            "modes": {"v": {"started": "s", "ran": 3, "seconds": 1.5, "batch_probe": [[8, True]],
                            "future_stat": 7, "peer_reported_from": None}},
            "probes": {"order": {"n": 3}}, "judge": None}
    manifest = Manifest.from_dict(data)
    assert manifest.schema == SCHEMA_0_1_0 and manifest.extra == {"probes": {"order": {"n": 3}}}
    assert manifest.modes["v"].extra == {"future_stat": 7} and manifest.modes["v"].batch_probe == [[8, True]]
    # "dtype" was absent (a run from before dtype joined the identity) and stays absent, so a resume can
    # still tell; the null "judge" and "peer_reported_from" stay null
    assert not manifest.has("dtype") and manifest.has("judge")
    out = manifest.to_dict()
    assert out.pop("schema") == SCHEMA_VERSION
    assert out == data and list(out) == list(data)
    write_manifest(tmp_path, manifest)
    again = read_manifest(tmp_path)
    assert again.schema == SCHEMA_VERSION and again.to_json() == manifest.to_json()  # written as this schema
    # a manifest made here (a peer import) writes only what is set
    made = Manifest.new({"model_label": "peer", "benchmark": "b", "modes": {}})
    made.modes["v"] = ModeStats(imported="now", tool="lmms-eval", n=2)
    assert made.schema == SCHEMA_VERSION and made.to_dict() == {
        "schema": SCHEMA_VERSION, "model_label": "peer", "benchmark": "b",
        "modes": {"v": {"imported": "now", "tool": "lmms-eval", "n": 2}}}


@pytest.mark.parametrize(("lines", "fragments"), [
    (['{"index": 0, "prediction": "A", "answer": "A"}', "{oops", "{}"], ("v.jsonl, row 2", "invalid prediction line")),
    (['{"index": 0, "prediction": "A", "answer": "A"}', '{"index": 1, "answer": "A"}', "{}"],
     ("v.jsonl, row 2", "lacks prediction")),
    (['{"index": "x7", "prediction": "A", "answer": "A"}'], ("v.jsonl, row 1", "index 'x7' is not an integer")),
    (['[1, 2]', "{}"], ("v.jsonl, row 1", "not a JSON object")),
    (['{"index": 1, "prediction": "A", "answer": "A", "options": "A: x"}'], ("row 1", "options is not a JSON object")),
    (['{"index": 1, "prediction": "A", "answer": "A", "schema": "two"}'], ("row 1", "schema 'two'")),
    (['{"index": 1, "prediction": "A", "answer": "A", "prompt_tokens": "many"}'], ("row 1", "prompt_tokens 'many'")),
])
def test_a_bad_line_is_one_error_naming_the_file_and_the_row(tmp_path, lines, fragments):
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        read_records(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_torn_last_line_is_skipped_and_said(tmp_path, capsys):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(LINE_0_1_0) + '\n{"index": 4, "predic')
    problems: list[str] = []
    assert [r.index for r in read_records(path, problems=problems)] == [3]
    assert problems == [f"{path}: torn last line ignored (run interrupted?)"]
    assert len(read_records(path)) == 1 and "torn last line" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "fragment"), [
    ("{not json", "manifest is not valid JSON"),
    ("[1]", "manifest file is not a JSON object"),
    ('{"modes": {"v": {"seconds": "slow"}}}', "manifest modes.v.seconds is 'slow', not a number"),
    ('{"modes": {"v": 3}}', "manifest modes.v is not a JSON object"),
    ('{"shots": true}', "manifest shots is True, not an integer"),
    ('{"schema": 0}', "schema 0 is not a positive integer"),
])
def test_a_bad_manifest_is_one_error_naming_the_file(tmp_path, text, fragment):
    (tmp_path / "manifest.json").write_text(text)
    (tmp_path / "v.jsonl").write_text(json.dumps(LINE_0_1_0) + "\n")
    with pytest.raises(DataError) as err:
        open_run(tmp_path)
    assert str(err.value).startswith(str(tmp_path / "manifest.json")) and fragment in str(err.value)
    lenient = open_run(tmp_path, strict=False)  # the viewer's way: the records are still read
    assert [r.index for r in lenient.records["v"]] == [3] and fragment in lenient.problems[0]


def test_open_run_refuses_what_is_no_run(tmp_path):
    with pytest.raises(DataError, match="not a run directory"):
        open_run(tmp_path / "missing")
    with pytest.raises(DataError, match=r"holds no v\.jsonl, wv\.jsonl or t\.jsonl"):
        open_run(tmp_path)
    (tmp_path / "v.jsonl").write_text((json.dumps(LINE_0_1_0) + "\n") * 2)
    with pytest.raises(DataError, match="index 3 appears more than once"):
        open_run(tmp_path)


def test_scoring_reads_typed_records_and_mappings_alike():
    typed = [PredictionRecord.from_dict({**LINE_0_1_0, "index": i, "prediction": p}) for i, p in enumerate("BAx")]
    plain = [r.to_dict() for r in typed]
    assert score_records(plain, "robust") == score_records(typed, "robust")
    assert as_record(typed[0]) is typed[0]
    with pytest.raises(DataError, match=r"<records>, row 2: prediction line lacks answer"):
        score_records([plain[0], {"index": 9, "prediction": "A"}])
