#!/usr/bin/env bash
# Writes tests/data/runs-0.1.0/ with mmstar 0.1.0 (commit b13ca56), never with the code under test:
#   git worktree add /tmp/v010 b13ca56
#   .venv/bin/pip wheel --no-deps --no-build-isolation -w /tmp/v010dist /tmp/v010
#   .venv/bin/pip install --no-deps --target /tmp/v010site /tmp/v010dist/mmstar-0.1.0-*.whl
#   bash tests/data/runs-0.1.0/make_fixture.sh /tmp/v010site /tmp/fx010 && cp -r /tmp/fx010/. tests/data/runs-0.1.0/
# It runs from /tmp so that neither the checkout nor its editable install shadows the 0.1.0 package.
set -euo pipefail
SITE=$1; OUT=$2; PY=${PY:-/work/main/.venv/bin/python}
export PYTHONPATH=$SITE HF_HUB_OFFLINE=1
cd /tmp
mm() { "$PY" -m mmstar "$@"; }
"$PY" -c "import mmstar, sys; assert mmstar.__file__.startswith('$SITE'), mmstar.__file__; print(mmstar.__file__)"
DATA=$SITE/mmstar/data/demo; MODELS=$SITE/mmstar/data/demo-models
rm -rf "$OUT"; mkdir -p "$OUT/rundirs" "$OUT/peer"
common=(--device cpu --dtype float32 --shots 0 --max-new-tokens 8 --batch-size 8 --no-progress --out "$OUT/rundirs")
# two demo models on the demo test split (2 samples per axis), one of them also on the train split
mm eval --model "$MODELS/clean" --backbone "$MODELS/base" --data "$DATA/test.parquet" --limit 18 "${common[@]}"
mm eval --model "$MODELS/clean" --backbone "$MODELS/base" --data "$DATA/train.parquet" --limit 12 "${common[@]}"
# judged: the base LM as judge, every reply sent, so judge fields sit on parsed and unparsed replies
mm eval --model "$MODELS/contaminated" --backbone "$MODELS/base" --data "$DATA/test.parquet" --limit 18 \
  "${common[@]}" --judge "$MODELS/base" --judge-all
# a tiny random LLaVA (garbage replies: unparsed ones, official and robust disagreeing), judged on the
# unparsed replies plus an audit of parsed ones
TINY=/tmp/fxgen/tiny; [ -f "$TINY/tiny-llava/config.json" ] || mm tiny-models --family llava "$TINY"
mm eval --model "$TINY/tiny-llava" --backbone "$TINY/tiny-llava-backbone" --data "$DATA/test.parquet" --limit 18 \
  "${common[@]}" --judge "$MODELS/base" --judge-audit 4
# samples without an image: mode v records an error for each of them
mm data convert "$DATA/test.parquet" /tmp/fxgen/noimg/full.jsonl
"$PY" - <<'PYEOF'
import json
lines = open("/tmp/fxgen/noimg/full.jsonl").read().splitlines()[:9]
out = []
for i, line in enumerate(lines):
    rec = json.loads(line)
    if i % 3 == 0:
        rec.pop("image", None)
    out.append(json.dumps(rec))
open("/tmp/fxgen/noimg/some-images.jsonl", "w").write("\n".join(out) + "\n")
PYEOF
mm eval --model "$MODELS/clean" --backbone "$MODELS/base" --data /tmp/fxgen/noimg/some-images.jsonl "${common[@]}"
# peer logs written from the clean run's predictions: VLMEvalKit xlsx (+ its _acc.csv) and lmms-eval samples
"$PY" - "$OUT/rundirs" "$OUT/peer" <<'PYEOF'
import json, sys
from pathlib import Path
import pandas as pd
runs, peer = Path(sys.argv[1]), Path(sys.argv[2])
clean = runs / "clean" / "test"
v = [json.loads(x) for x in (clean / "v.jsonl").read_text().splitlines()]
pd.DataFrame([{"index": r["index"], "question": r["question"], "answer": r["answer"], "category": r["category"],
               "l2_category": r["l2_category"], "bench": r["source"], "prediction": r["prediction"]} for r in v]
             ).to_excel(peer / "demo-peer_MMStar.xlsx", index=False)
(peer / "demo-peer_MMStar_acc.csv").write_text("split,Overall\nnone,0.5\n")
t = [json.loads(x) for x in (clean / "t.jsonl").read_text().splitlines()]
lmms = peer / "demo-lmms"
lmms.mkdir()
with open(lmms / "20250101_120000_samples_mmstar.jsonl", "w") as fh:
    for r in t:
        fh.write(json.dumps({"doc_id": r["index"], "target": r["answer"], "resps": [[r["prediction"]]],
                             "filtered_resps": [r["prediction"]], "input": r["question"],
                             "perception": {"question_id": r["index"], "category": r["category"],
                                            "l2_category": r["l2_category"], "score": float(r["hit_official"])}})
                 + "\n")
(lmms / "20250101_120000_results.json").write_text(json.dumps({"results": {"mmstar": {"average,none": 0.4}}}))
PYEOF
mm import vlmevalkit "$OUT/peer/demo-peer_MMStar.xlsx" --mode v --out "$OUT/rundirs"
mm import lmms-eval "$OUT/peer/demo-lmms/20250101_120000_samples_mmstar.jsonl" --mode t --out "$OUT/rundirs"
dirs=$(ls -d "$OUT"/rundirs/*/*/ | sort)
mm leaderboard $dirs --csv "$OUT/leaderboard.csv" --json "$OUT/leaderboard.json"
mm leaderboard $dirs --csv "$OUT/leaderboard-robust.csv" --matcher robust
for f in "$OUT"/rundirs/*/*/v.jsonl; do
  mm score "$f" --json > "${f%.jsonl}.score.json"
done
"$PY" -c "import mmstar; print(mmstar.__version__)" > "$OUT/written-by.txt"
