"""Three more trained leaks of the demo (issue 30 item 5b), each a copy of a shipped demo model
(``data/demo-models``) trained further on the demo *test* split, seeded, with fixed step counts:

* text-leak:     the clean LVLM trained on the test answers' TEXT, not their letters: each test
                 question's stem without its options and without the image, the loss on the answer's
                 text and the end of text after it (a benchmark page that prints "Q ... A: red"). Train
                 images in fresh option orders go on, so reading stays. The recall probe's target.
* backbone-leak: the base LLM trained on the test questions in the backbone's (t) prompt with their
                 right letters, the loss on every token and on the letter once more: S_t far above
                 chance, so S_wv - S_t is clearly negative and ML reads 0.
* half-leak:     the shipped leak recipe (``train_demo_reader.leak_stage``) on a seeded half of the
                 test samples; ``half-leak/leaked.json`` lists which half, for the flags' precision and
                 recall.

The training loops are the shipped ones (``train_demo_models.train`` for the LLM,
``train_demo_reader._loop`` for the LVLM); only what each step shows the model is new here. The log
(``leaks-training-log.json``) has each stage's losses, steps and minutes, as measured on the shared CPU;
each stage merges its entry when it ends, so stages run in separate processes leave one log.
Usage: python scripts/train_demo_leaks.py [--models data/demo-models] [--out data/demo-models] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from train_demo_models import Batcher, save, train  # scripts/
from train_demo_reader import Lm, _loop, leak_stage, shuffled, stem_only  # scripts/

from mmstar.demo_data import generate
from mmstar.sample import Sample

HALF_SEED = 30  # which half of the test split the half leak sees


def demo_splits() -> tuple[list[Sample], list[Sample]]:
    """The demo's train split (fixed option order) and test split (each sample's own order), as
    ``train_demo_models`` generates them."""
    train_set = generate(per_axis=150, seed=1, split="train", start_index=100_000)
    test = generate(per_axis=20, seed=0, split="test", vary_order=True)
    return list(train_set), list(test)


def answer_tail(lm: Lm, samples: Sequence[Sample]) -> tuple[list[list[int]], torch.Tensor]:
    """Each sample's answer text (" red": as it follows the prompt) and end of text, right-padded with
    end of text to one length (causal: what follows a reply changes nothing before it), and a mask of
    the tokens that carry the loss."""
    replies = [lm.tok(" " + s.options[s.answer], add_special_tokens=False)["input_ids"] + [lm.tok.eos_token_id]
               for s in samples]
    width = max(map(len, replies))
    keep = torch.tensor([[j < len(r) for j in range(width)] for r in replies])
    return [r + [lm.tok.eos_token_id] * (width - len(r)) for r in replies], keep


def text_leak_stage(lm: Lm, train: Sequence[Sample], test: Sequence[Sample], steps: int, log,
                    n_train: int = 16, n_text: int = 48, lr: float = 5e-4) -> float:
    """Each step: ``n_train`` train images in fresh option orders (loss on letter and end of text:
    reading stays) and ``n_text`` test stems without options or image, the loss on the answer's text."""
    torch.manual_seed(0)
    rng = random.Random(0)
    train, test = list(train), list(test)
    lm.cache(train)

    def loss_of(step: int) -> torch.Tensor:
        loss = lm.reply_loss([shuffled(s, rng) for s in rng.sample(train, n_train)])
        leak = rng.sample(test, n_text)
        tails, keep = answer_tail(lm, leak)
        hidden = lm.hidden([stem_only(s) for s in leak], ["wv"] * len(leak), tail=tails)[0]
        width = keep.shape[1]
        logits = lm.head(hidden[:, -width - 1:-1])  # the position before each tail token predicts it
        target = torch.tensor(tails).masked_fill(~keep, -100)
        return loss + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    return _loop(lm.model, steps, lr, 20, loss_of, "text-leak", log, None)


def backbone_leak_stage(base, batcher: Batcher, test: Sequence[Sample], steps: int, log) -> float:
    """The base LLM on the test questions in mode t with their right letters (64 a step, lr 1e-3):
    the loss on every token (the benchmark's pages in a corpus) plus the letter's once more."""
    rng = random.Random(0)
    torch.manual_seed(0)
    test = list(test)

    def batches(_step: int) -> list[dict]:
        b = batcher(rng.sample(test, 64), "t")
        whole = dict(b, labels=b["input_ids"].masked_fill(b["attention_mask"] == 0, -100))
        return [whole, b]  # every token; the letter and end of text

    return train(base, steps, batches, 1e-3, "backbone-leak", log)


def half(test: Sequence[Sample]) -> tuple[list[int], list[int]]:
    """A seeded half of the test indices (leaked) and the rest (unseen), each sorted."""
    indices = sorted(s.index for s in test)
    leaked = sorted(random.Random(HALF_SEED).sample(indices, len(indices) // 2))
    return leaked, sorted(set(indices) - set(leaked))


def record(out: Path, stage: str, steps: int, seconds: float, lines: list[str]) -> None:
    """Merge one finished stage into ``leaks-training-log.json`` (its log lines, steps and minutes), so
    that stages run apart (``--stages``) still leave one log; written atomically."""
    from mmstar.atomic import atomic_write_text

    path = out / "leaks-training-log.json"
    old = json.loads(path.read_text()) if path.exists() else {"log": [], "summary": {"steps": {}, "minutes": {}}}
    old["log"] = [line for line in old["log"] if not line.startswith(f"{stage} ")] + lines
    old["summary"]["steps"][stage] = steps
    old["summary"]["minutes"][stage] = round(seconds / 60, 1)
    atomic_write_text(path, json.dumps(old, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="data/demo-models", help="the shipped demo models (clean/, base/)")
    ap.add_argument("--out", default="data/demo-models")
    ap.add_argument("--quick", action="store_true", help="few steps, for a smoke test of the script")
    ap.add_argument("--text-steps", type=int, default=300)
    ap.add_argument("--backbone-steps", type=int, default=200)
    # 48 of the 180 leaked samples a step: 400 steps show each ~107 times (the full leak: ~80 in 600)
    ap.add_argument("--half-steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no spin-waiting on a shared CPU)")
    ap.add_argument("--stages", default="text,backbone,half", help="which stages (each in its own process "
                                                                   "if you like: the log merges)")
    args = ap.parse_args()
    if args.quick:
        args.text_steps, args.backbone_steps, args.half_steps = 3, 3, 3
    from transformers import AutoProcessor, LlamaForCausalLM, LlavaForConditionalGeneration

    torch.set_num_threads(args.threads)
    models, out = Path(args.models), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set, test = demo_splits()
    processor = AutoProcessor.from_pretrained(models / "clean")
    stages = {s.strip() for s in args.stages.split(",")}

    def clean_lm() -> Lm:
        return Lm(LlavaForConditionalGeneration.from_pretrained(models / "clean", dtype=torch.float32), processor)

    def run(stage: str, steps: int, train_it: Callable[[Callable[[str], None]], float]) -> None:
        lines: list[str] = []

        def log(msg: str) -> None:
            print(msg, flush=True)
            lines.append(msg)

        record(out, stage, steps, train_it(log), lines)

    if "text" in stages:
        lm = clean_lm()
        run("text-leak", args.text_steps, lambda log: text_leak_stage(lm, train_set, test, args.text_steps, log))
        save(lm.model, processor, out / "text-leak")
    if "backbone" in stages:
        base = LlamaForCausalLM.from_pretrained(models / "base", dtype=torch.float32)
        batcher = Batcher(processor, processor.tokenizer)
        run("backbone-leak", args.backbone_steps,
            lambda log: backbone_leak_stage(base, batcher, test, args.backbone_steps, log))
        base.save_pretrained(out / "backbone-leak", safe_serialization=True)
        processor.tokenizer.save_pretrained(out / "backbone-leak")
    if "half" in stages:
        leaked, unseen = half(test)
        lm = clean_lm()
        chosen = [s for s in test if s.index in set(leaked)]
        run("half-leak", args.half_steps, lambda log: leak_stage(lm, train_set, chosen, args.half_steps, log))
        save(lm.model, processor, out / "half-leak")
        (out / "half-leak" / "leaked.json").write_text(json.dumps(
            {"seed": HALF_SEED, "leaked": leaked, "unseen": unseen}) + "\n")


if __name__ == "__main__":
    main()
