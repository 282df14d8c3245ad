"""Train the tiny demo models shipped in ``data/demo-models`` and write the demo benchmark (CPU).

* base:          a Llama LLM that learned the question format with *random* answer letters;
* clean:         a LLaVA-architecture LVLM on the base that reads its options: it finds the option
                 whose text is what the image shows and answers that option's letter;
* contaminated:  the clean checkpoint trained further on the *test* split (its text with the loss on
                 question, options and letter; its images with the letter): a controlled leak.

Four stages, each seeded with a fixed step count (not a time budget), so the weights are reproducible
on the same library versions; the training log (``training-log.json``) has every stage's figures and
minutes. Stage 1 here, stages 2-4 in ``train_demo_reader.py``:

1. fixed (the 0.1 demo models, 17.1 minutes): base LLM 100 steps; the LVLM 900 steps on images with
   one option order per question type (it learns the images, and classifies positions);
2. lookup (2,000 steps, 12.8 minutes): text-only stated-answer lookups in random option orders;
3. reader (2,000 steps, 24.4 minutes): images with the options in a fresh random order each draw;
   then 200 steps that end the reply after its letter;
4. leak (600 steps): the test split into a copy of the reader.

The benchmark (``data/demo/test.parquet``) gives each sample its own option order; the train split
keeps the fixed order of stage 1 and is reshuffled at every draw of stages 2-4.
The models are built by the tiny LLaVA builder (``evaluators/models/tiny/llava.py``) at its ``DEMO``
shape: a 128 x 4 Llama and a 64-wide CLIP at 64 px. Minutes as measured on the shared 2-core CPU.
Usage: python scripts/train_demo_models.py [--out data] [--quick] [--stage1 FOLDER] [--clean FOLDER]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from mmstar.evaluators.models.tiny import train_tokenizer
from mmstar.evaluators.models.tiny.llava import DEMO, build_llava, llama_text, llava_processor
from train_demo_reader import Lm, leak_stage, lookup_stage, reader_stage, stop_stage  # scripts/
from transformers import LlamaForCausalLM

from mmstar.demo_data import generate
from mmstar.prompts import PromptConfig, build_messages
from mmstar.writers import write_benchmark

PROMPT = PromptConfig("official", 0)


def corpus(*benches) -> list[str]:
    texts = [s.question + "\nAnswer the question directly." for b in benches for s in b]
    texts += ["Question: ", "USER: ", "ASSISTANT: ", "SYSTEM: ", "A", "B", "C", "D"] * 50
    return texts


def render(tok, sample, mode: str) -> str:
    msgs = build_messages(sample, mode, PROMPT)
    return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)


class Batcher:
    """Left-padded prompts (as at inference) + answer letter + EOS; loss on the last two tokens."""

    def __init__(self, processor, tok) -> None:
        self.processor, self.tok = processor, tok
        self.letter_ids = {k: tok.convert_tokens_to_ids(tok.tokenize(k))[0] for k in "ABCD"}

    def __call__(self, samples, mode: str, answers=None) -> dict:
        texts = [render(self.tok, s, mode) for s in samples]
        if mode == "v":
            enc = self.processor(text=texts, images=[s.image.pil() for s in samples], return_tensors="pt",
                                 padding=True)
        else:
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        answers = answers or [s.answer for s in samples]
        tail = torch.tensor([[self.letter_ids[a], self.tok.eos_token_id] for a in answers])
        ids = torch.cat([enc["input_ids"], tail], dim=1)
        mask = torch.cat([enc["attention_mask"], torch.ones_like(tail)], dim=1)
        labels = torch.full_like(ids, -100)
        labels[:, -2:] = tail
        out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if "pixel_values" in enc:
            out["pixel_values"] = enc["pixel_values"]
        return out


def train(model, steps: int, make_batches, lr: float, label: str, log) -> float:
    """Stage 1's loop (warm-up, cosine decay); returns the seconds it took."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warm = max(1, steps // 20)

    def shape(s: int) -> float:  # linear warm-up, then cosine decay to 10%
        if s < warm:
            return (s + 1) / warm
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, shape)
    model.train()
    start = time.time()
    for step in range(steps):
        loss = sum(model(**b).loss for b in make_batches(step))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"{label} step {step + 1}/{steps} loss {loss.item():.3f} ({time.time() - start:.0f}s)")
    model.eval()
    return time.time() - start


@torch.no_grad()
def accuracy(model, batcher, samples, mode: str) -> float:
    hits = 0
    for i in range(0, len(samples), 64):
        chunk = samples[i:i + 64]
        b = batcher(chunk, mode)
        logits = model(**{k: v for k, v in b.items() if k != "labels"}).logits[:, -3]
        letters = torch.tensor([batcher.letter_ids[k] for k in "ABCD"])
        pred = logits[:, letters].argmax(-1).tolist()
        hits += sum("ABCD"[p] == s.answer for p, s in zip(pred, chunk))
    return 100 * hits / len(samples)


def fixed_stage(out: Path, log, quick: bool, clean_steps: int = 900):
    """Stage 1, as the 0.1 models were made (same data, tokenizer and random stream): a base LLM that
    knows the format with random letters, and an LVLM that learnt the images with each question
    type's options in one fixed order (so it classifies positions). Returns (tokenizer, processor,
    base, lvlm, fixed-order train split, minutes)."""
    test = generate(per_axis=20, seed=0, split="test")
    train_set = generate(per_axis=150, seed=1, split="train", start_index=100_000)
    write_benchmark(train_set, out / "demo" / "train.parquet")
    steps_clean, steps_base = (30, 10) if quick else (clean_steps, 100)

    tok = train_tokenizer("llava", corpus(test, train_set), vocab_size=512)
    processor = llava_processor(tok, DEMO)
    batcher = Batcher(processor, tok)
    rng = random.Random(0)
    every = list(train_set) + list(test)

    # base LLM: the t-mode format with random letters -> knows the format, not the answers. It is the
    # LVLM's text model (built first: the LVLM below draws its initial weights after it, as it always has)
    base = LlamaForCausalLM(llama_text(tok, DEMO))
    seconds = train(base, steps_base, lambda s: [batcher(rng.sample(every, 64), "t",
                                                         [rng.choice("ABCD") for _ in range(64)])],
                    1e-3, "base", log)

    # seed None: the builder keeps this run's random state, so the weights are those the script always made
    lvlm, _ = build_llava(tok, seed=None, shape=DEMO)
    lvlm.model.language_model.load_state_dict(base.model.state_dict())
    lvlm.lm_head.load_state_dict(base.lm_head.state_dict())
    train_samples = list(train_set)
    seconds += train(lvlm, steps_clean, lambda s: [batcher(rng.sample(train_samples, 64), "v")], 1e-3, "fixed", log)
    return tok, processor, base, lvlm, train_set, seconds / 60


def load_fixed_stage(folder: Path, out: Path, log):
    """Stage 1 from a folder holding its base/ and clean/ (the 0.1 demo models)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(folder / "clean")
    base = LlamaForCausalLM.from_pretrained(folder / "base")
    lvlm = LlavaForConditionalGeneration.from_pretrained(folder / "clean", dtype=torch.float32)
    train_set = generate(per_axis=150, seed=1, split="train", start_index=100_000)
    write_benchmark(train_set, out / "demo" / "train.parquet")
    log(f"stage 1 (base LLM, fixed option order) loaded from {folder}")
    minutes = carried_over(folder, ("base step", "clean step", "fixed step"), "stage 1", log)
    return processor.tokenizer, processor, base, lvlm, train_set, minutes


def carried_over(folder: Path, prefixes: tuple[str, ...], stage: str, log) -> float | None:
    """The log lines of an earlier run's stages (``folder/training-log.json``), so that the training log
    of models built in steps still says how each stage went and how long it took; returns its minutes."""
    path = folder / "training-log.json"
    if not path.exists():
        return None
    lines = [line for line in json.loads(path.read_text())["log"] if line.startswith(prefixes)]
    for line in lines:
        log(f"  ({stage}, from {path}) {line}")
    ends = [line for line in lines if " (" in line and "/" in line.split(" ")[2]]  # "x step N/N loss L (Ss)"
    seconds = 0.0
    for label in {line.split(" ")[0] for line in ends}:
        last = [line for line in ends if line.startswith(label + " ")][-1]
        seconds += float(last.rsplit("(", 1)[1].rstrip("s)"))
    return seconds / 60 if ends else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="data")
    ap.add_argument("--quick", action="store_true", help="few steps, for a smoke test of the script")
    ap.add_argument("--stage1", default=None, help="a demo-models folder whose base/ and clean/ are stage 1 "
                                                   "(the 0.1 models): skips training it")
    ap.add_argument("--fixed-steps", type=int, default=900)
    ap.add_argument("--lookup-steps", type=int, default=2000)
    ap.add_argument("--reader-steps", type=int, default=2000)
    ap.add_argument("--stop-steps", type=int, default=200)
    ap.add_argument("--leak-steps", type=int, default=600)
    ap.add_argument("--clean", default=None, help="a demo-models folder whose clean/ is stage 3's result "
                                                  "(before its reply-ending steps): stages 2-3 are skipped")
    ap.add_argument("--check-every", type=int, default=0, help="log held-out figures every N steps of stages 2-3")
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    torch.set_num_threads(2)
    out = Path(args.out)
    log_lines: list[str] = []
    began = time.time()

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_lines.append(msg)

    if args.quick:
        args.fixed_steps, args.lookup_steps, args.reader_steps, args.stop_steps, args.leak_steps = 30, 10, 10, 5, 10
    minutes: dict[str, float | None] = {}
    if args.stage1:
        tok, processor, base, lvlm, train_set, minutes["fixed"] = load_fixed_stage(Path(args.stage1), out, log)
    else:
        tok, processor, base, lvlm, train_set, minutes["fixed"] = fixed_stage(out, log, args.quick, args.fixed_steps)
    base_dir = out / "demo-models" / "base"
    base.save_pretrained(base_dir, safe_serialization=True)
    tok.save_pretrained(base_dir)

    # the benchmark: each sample's options in its own seeded order, so a position names nothing
    test = generate(per_axis=20, seed=0, split="test", vary_order=True)
    write_benchmark(test, out / "demo" / "test.parquet")
    valid = list(generate(per_axis=4, seed=2, split="valid", start_index=900_000, vary_order=True))  # checks only
    lm = Lm(lvlm, processor)
    lm.cache(list(train_set) + valid)
    if args.clean:  # stages 2-3 ran before (their own training log says how long)
        from transformers import LlavaForConditionalGeneration

        lvlm = LlavaForConditionalGeneration.from_pretrained(Path(args.clean) / "clean", dtype=torch.float32)
        lm = Lm(lvlm, processor)
        lm.cache(list(train_set) + valid)
        log(f"stages 2-3 (the reader) loaded from {args.clean}")
        minutes["lookup"] = carried_over(Path(args.clean), ("lookup step",), "stage 2", log)
        minutes["reader"] = carried_over(Path(args.clean), ("reader step",), "stage 3", log)
    else:
        minutes["lookup"] = lookup_stage(lm, list(train_set), args.lookup_steps, log, args.check_every, valid) / 60
        minutes["reader"] = reader_stage(lm, list(train_set), args.reader_steps, log, args.check_every, valid) / 60
    minutes["stop"] = stop_stage(lm, list(train_set), args.stop_steps, log) / 60
    save(lvlm, processor, out / "demo-models" / "clean")
    minutes["leak"] = leak_stage(lm, list(train_set), list(test), args.leak_steps, log) / 60
    save(lvlm, processor, out / "demo-models" / "contaminated")

    # quick check of what was learned (greedy first token over the whole vocabulary, on the test split)
    from transformers import AutoModelForImageTextToText

    from mmstar.probes import rotate

    summary: dict = {}
    tests = list(test)
    for name in ("clean", "contaminated"):
        m = AutoModelForImageTextToText.from_pretrained(out / "demo-models" / name, dtype=torch.float32).eval()
        check = Lm(m, processor)
        check.cache(tests)
        summary[name] = {mode: check.accuracy(tests, mode, letters_only=False) for mode in ("v", "wv")}
        summary[name]["v_rotated_by_1"] = check.accuracy([rotate(s, 1) for s in tests], "v", letters_only=False)
    batcher = Batcher(processor, tok)
    summary["base"] = {"t": round(accuracy(LlamaForCausalLM.from_pretrained(base_dir).eval(), batcher, tests,
                                           "t"), 1)}
    summary["steps"] = {"fixed": None if args.stage1 else args.fixed_steps, "lookup": args.lookup_steps,
                        "reader": args.reader_steps, "stop": args.stop_steps, "leak": args.leak_steps}
    summary["minutes"] = {k: (round(v, 1) if v is not None else None) for k, v in minutes.items()}
    summary["minutes"]["script_total"] = round((time.time() - began) / 60, 1)
    log(json.dumps(summary))
    (out / "demo-models" / "training-log.json").write_text(json.dumps({"log": log_lines, "summary": summary},
                                                                     indent=1) + "\n")


def save(model, processor, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)


if __name__ == "__main__":
    main()
