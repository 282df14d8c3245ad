"""A decompression-bomb image (issue 32, finding 8): a 76 KB PNG that declares 20,000 x 20,000 pixels.
Each place that opens images says so in one line naming the file and row, and goes on: `data validate`,
`eval` (a real tiny model run: that sample's record gets the error), `report`, the viewer and the
review app. The cap lives in one place, mmstar/images.py; `serve` is in test_security_serve.py."""

import base64
import json
import re

import pandas as pd
import pytest
from conftest import make_samples, run_cli
from hostile import bomb_png
from test_viewer import write_runs

from mmstar.errors import DataError
from mmstar.images import DEFAULT_MAX_PIXELS, ENV, pixel_cap
from mmstar.sample import Benchmark, ImageRef
from mmstar.writers import write_benchmark

BOMB = bomb_png()
BIG = bomb_png(12_000, 12_000)  # over our cap, under Pillow's own (which would decode 430 MB of it)


def _with_bomb(n=4, at=1, data=BOMB, **kw):
    items = make_samples(n, **kw)
    items[at] = items[at].with_(image=ImageRef(data=data))
    return items


def test_the_cap_is_one_clear_data_error_and_configurable(monkeypatch, capsys):
    for data, words in ((BOMB, "400,000,000 pixels"), (BIG, "12000 x 12000 = 144,000,000 pixels")):
        with pytest.raises(DataError, match="over the cap of 64,000,000") as caught:
            ImageRef(data=data, origin="x.tsv, row 7").pil()
        assert str(caught.value).startswith("x.tsv, row 7: image is ") and words in str(caught.value)
    assert pixel_cap() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv(ENV, "200_000_000")  # a real image this large: the operator raises the cap
    assert ImageRef(data=BIG).pil().size == (12_000, 12_000)
    monkeypatch.setenv(ENV, "1000")
    with pytest.raises(DataError, match="40 x 40 = 1,600 pixels, over the cap of 1,000 "):
        ImageRef(data=bomb_png(40, 40)).pil()
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(Exception, match=f"{ENV}='lots' must be a positive whole number"):
        pixel_cap()
    from mmstar.app.cli import main

    assert main(["data", "info", "nothing-here.parquet"]) == 2  # refused before the command runs
    assert capsys.readouterr().err.strip() == f"mmstar: error: {ENV}='lots' must be a positive whole number of pixels"


def test_data_validate_names_the_row_and_goes_on(tmp_path):
    rows = [{"index": s.index, "question": s.question, "answer": s.answer, "category": s.category,
             "l2_category": s.l2_category, "image": base64.b64encode(s.image.data()).decode()}
            for s in _with_bomb(4, at=1)]
    rows[3]["answer"] = "Z"  # a problem after the bomb is still found
    path = tmp_path / "bomb.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    proc = run_cli("data", "validate", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    bomb_lines = [line for line in proc.stdout.splitlines() if "pixels" in line]
    assert len(bomb_lines) == 1 and "row 2: index 1: image is 400,000,000 pixels, over the cap" in bomb_lines[0]
    assert "row 4: index 3: answer 'Z'" in proc.stdout


def test_eval_records_the_bad_image_on_its_sample_and_goes_on(tiny_pairs, tmp_path):
    from mmstar.app.cli import main

    path = write_benchmark(Benchmark("bombs", _with_bomb(4, at=1)), tmp_path / "bombs.parquet")
    pair = tiny_pairs["llava"]
    assert main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(path),
                 "--modes", "v,wv", "--out", str(tmp_path / "runs"), "--no-progress", "--max-new-tokens", "2"]) == 0
    (run_dir,) = [p.parent for p in (tmp_path / "runs").glob("*/*/manifest.json")]
    v = {r["index"]: r for r in map(json.loads, (run_dir / "v.jsonl").read_text().splitlines())}
    assert sorted(v) == [0, 1, 2, 3]
    assert "bombs.parquet, row 2: image is 400,000,000 pixels, over the cap" in v[1]["error"]
    assert v[1]["prediction"] == ""
    assert v[1]["choice"] is None
    assert all(v[i]["error"] is None for i in (0, 2, 3))
    wv = [json.loads(x) for x in (run_dir / "wv.jsonl").read_text().splitlines()]
    assert len(wv) == 4 and all(r["error"] is None for r in wv)  # without the image it is an ordinary sample


def test_report_and_viewer_show_one_line_for_the_bomb(tmp_path):
    dirs = write_runs(tmp_path, html_question=False)
    # the runs' data, with the bomb as the image of sample 0, which alpha "leaked" (the report shows it)
    write_benchmark(Benchmark("mini", _with_bomb(12, at=0)), tmp_path / "mini.parquet")
    out = tmp_path / "report.html"
    proc = run_cli("report", str(dirs["alpha"]), "--html", str(out))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    text = out.read_text()
    assert text.count("mini.parquet, row 1: image is 400,000,000 pixels, over the cap") == 1
    assert text.count('src="data:image/jpeg;base64,') == 2  # the other two leaked samples keep theirs
    from mmstar.viewer.images import Images

    from mmstar.runs import open_run

    data, why = Images().image(open_run(dirs["alpha"]).manifest, 0)
    assert data is None and "400,000,000 pixels" in why  # the browser is never sent the bomb
    data, why = Images().image(open_run(dirs["alpha"]).manifest, 1)
    assert data is not None and why == ""


def test_the_review_app_shows_one_error_line_not_a_traceback(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    pytest.importorskip("sqlalchemy")
    from conftest import REPO
    from streamlit.testing.v1 import AppTest

    cands = write_benchmark(Benchmark("cands", _with_bomb(4, at=0)), tmp_path / "cands.parquet")
    monkeypatch.setenv("MMSTAR_REVIEW_CANDIDATES", str(cands))
    monkeypatch.setenv("MMSTAR_REVIEW_DB", str(tmp_path / "app.db"))
    monkeypatch.setenv("MMSTAR_REVIEW_REVIEWER", "alice")
    at = AppTest.from_file(str(REPO / "review_app" / "app.py"), default_timeout=60).run()
    assert not at.exception
    # the app escapes markdown in messages that quote data (gate.plain): read the text as the page shows it
    errors = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]
    assert len(errors) == 1 and "cands.parquet, row 1: image is 400,000,000 pixels, over the cap" in errors[0], errors
