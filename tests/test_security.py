"""Security defaults: no remote code unless asked, run and output names cannot escape their folder,
image paths stay inside their dataset folder (parquet path-only images too)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import png_bytes

from mmstar.errors import DataError, MmstarError
from mmstar.loaders import load_benchmark
from mmstar.runs import slugify


def test_trust_remote_code_is_off_by_default(tiny_pairs, demo_parquet, tmp_path):
    from mmstar.app.cli import main

    pair = tiny_pairs["llava"]
    assert main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
                 "--limit", "2", "--out", str(tmp_path), "--no-progress", "--max-new-tokens", "2"]) == 0
    (manifest,) = tmp_path.glob("*/*/manifest.json")
    backends = json.loads(manifest.read_text())["backends"]
    assert backends["vlm"]["trust_remote_code"] is False and backends["llm"]["trust_remote_code"] is False


@pytest.mark.parametrize("name", ["../../etc", "..", "a/../../b", "/abs/path", "x\x00y", "..\\..\\win"])
def test_run_names_cannot_escape(name):
    try:
        slug = slugify(name)
    except MmstarError:
        return
    assert "/" not in slug and "\\" not in slug and slug not in (".", "..") and not slug.startswith(".")


def test_parquet_image_paths_stay_inside_the_dataset_folder(tmp_path):
    (tmp_path / "secret.png").write_bytes(png_bytes((0, 0, 0)))
    root = tmp_path / "ds"
    root.mkdir()
    table = pa.Table.from_pylist([{"index": 0, "question": "Q\nOptions: A: x, B: y", "answer": "A",
                                   "image": {"bytes": None, "path": "../secret.png"}}])
    pq.write_table(table, root / "b.parquet")
    with pytest.raises(DataError, match="escapes the dataset folder"):
        load_benchmark(root / "b.parquet")
