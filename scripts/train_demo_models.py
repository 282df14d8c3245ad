"""Train the tiny demo models shipped in ``data/demo-models`` (CPU, about 10-15 minutes).

* base:          a Llama LLM that learned the question format with *random* answer letters;
* clean:         a LLaVA-architecture LVLM on the base, trained on the train split with images;
* contaminated:  the clean checkpoint trained further on images plus the *test* split's question
                 texts with their answers and no image: a controlled leak.

The models are built by the tiny LLaVA builder (``evaluators/models/tiny/llava.py``) at its ``DEMO``
shape: a 128 x 4 Llama and a 64-wide CLIP at 64 px. Everything is seeded; step counts are fixed
(not time budgets) so the weights are reproducible on the same library versions.
Usage: python scripts/train_demo_models.py [--out data] [--quick]
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


def train(model, steps: int, make_batches, lr: float, label: str, log, probe=None) -> float:
    """``probe``: (every, check) logs ``check()`` every ``every`` steps (scripts/train_demo_reader.py);
    returns the seconds it took."""
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
        if probe is not None and (step + 1) % probe[0] == 0 and step + 1 < steps:
            model.eval()
            log(f"{label} step {step + 1}: {probe[1]()}")
            model.train()
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="data")
    ap.add_argument("--quick", action="store_true", help="few steps, for a smoke test of the script")
    ap.add_argument("--clean-steps", type=int, default=900)
    ap.add_argument("--leak-steps", type=int, default=300)
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    torch.set_num_threads(2)
    out = Path(args.out)
    log_lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_lines.append(msg)

    test = generate(per_axis=20, seed=0, split="test")
    train_set = generate(per_axis=150, seed=1, split="train", start_index=100_000)
    write_benchmark(test, out / "demo" / "test.parquet")
    write_benchmark(train_set, out / "demo" / "train.parquet")
    steps_clean, steps_leak, steps_base = (30, 20, 10) if args.quick else (args.clean_steps, args.leak_steps, 100)

    tok = train_tokenizer("llava", corpus(test, train_set), vocab_size=512)
    processor = llava_processor(tok, DEMO)
    batcher = Batcher(processor, tok)
    rng = random.Random(0)
    every = list(train_set) + list(test)

    # base LLM: the t-mode format with random letters -> knows the format, not the answers. It is the
    # LVLM's text model (built first: the LVLM below draws its initial weights after it, as it always has)
    base = LlamaForCausalLM(llama_text(tok, DEMO))
    train(base, steps_base, lambda s: [batcher(rng.sample(every, 64), "t", [rng.choice("ABCD") for _ in range(64)])],
          1e-3, "base", log)

    # seed None: the builder keeps this run's random state, so the weights are those the script always made
    lvlm, _ = build_llava(tok, seed=None, shape=DEMO)
    lvlm.model.language_model.load_state_dict(base.model.state_dict())
    lvlm.lm_head.load_state_dict(base.lm_head.state_dict())
    train_samples = list(train_set)
    train(lvlm, steps_clean, lambda s: [batcher(rng.sample(train_samples, 64), "v")], 1e-3, "clean", log)
    save(lvlm, processor, out / "demo-models" / "clean")

    test_samples = list(test)
    train(lvlm, steps_leak, lambda s: [batcher(rng.sample(train_samples, 32), "v"),
                                       batcher(rng.sample(test_samples, 32), "wv")], 5e-4, "contaminated", log)
    save(lvlm, processor, out / "demo-models" / "contaminated")
    base_dir = out / "demo-models" / "base"
    base.save_pretrained(base_dir, safe_serialization=True)
    tok.save_pretrained(base_dir)

    # quick check of what was learned (next-token argmax over A-D, on the test split)
    from transformers import AutoModelForImageTextToText

    summary = {}
    for name in ("clean", "contaminated"):
        m = AutoModelForImageTextToText.from_pretrained(out / "demo-models" / name, dtype=torch.float32).eval()
        summary[name] = {mode: round(accuracy(m, batcher, test_samples, mode), 1) for mode in ("v", "wv")}
        for axis in sorted({s.l2_category for s in test_samples}):
            sub = [s for s in test_samples if s.l2_category == axis]
            log(f"  {name} v {axis}: {accuracy(m, batcher, sub, 'v'):.0f}")
    summary["base"] = {"t": round(accuracy(LlamaForCausalLM.from_pretrained(base_dir).eval(), batcher, test_samples,
                                           "t"), 1)}
    log(json.dumps(summary))
    (out / "demo-models" / "training-log.json").write_text(json.dumps({"log": log_lines, "summary": summary},
                                                                     indent=1) + "\n")


def save(model, processor, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)


if __name__ == "__main__":
    main()
