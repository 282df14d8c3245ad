"""An attempt at issue 21 item 4: demo models that READ their options (not yet shipped).

The bundled demo models (``scripts/train_demo_models.py``) were trained on data with one option order
per question type, so they learnt answer positions: rotating the options drops demo-clean's S_v from
96.39 to 5.28, 1.11 and 11.67 for the three shifts (scripts/demo_probe_check.py).
This script retrains them on data where each sample has its
own option order (``generate(vary_order=True)``), from the shipped fixed-order models (stage 1):

* clean (stage 2): train questions with images, plus two helpers for the lookup a reader needs (find
  what the image shows among the options, copy its letter): a scaffold where the question states
  the answer's text ("Answer: blue.", a share decaying to none) and a words task (the reply is the
  answer's text, what the image shows, without any lookup). Only the train split; vision tower frozen.
* contaminated: the clean checkpoint trained further on a few train images plus the *test* split's
  text with the loss on the question and options as well as on the letter (no image): a leak the
  way it happens, the benchmark's pages in a training corpus.

Measured on the shared 2-core CPU (7 December 2026); every figure on 72 held-out questions:
* stage 2 alone (no stage 1b; 200 steps at 32+8+16 samples, about 25 minutes under load): at chance
  (v 22-32%, options rotated 19-35%); the stated-answer lookup 12.5%, the words task 26% (first
  token); the fixed-order mapping was unlearnt meanwhile (canonical order 96% -> 32%);
* stage 1b alone (64 stated-answer lookups a step, lr 1e-3): 25, 25, 36, 32, 28% at steps 25-150;
* ten lookups per sequence ("Options: ... blue? B. red? D. ..."), 48 sequences a step: at chance
  through 400 steps, from the shipped clean model and from a freshly initialised Llama alike (and
  through 600 steps from a fresh Llama at lr 3e-3).
The lookup (an induction-style circuit: find the option's text, copy the letter before it) does not
form within a few hundred CPU steps at this size; a next try needs thousands of steps (a GPU), and
only then the composition with vision (stage 2) and the leak.
Everything is seeded; step counts are fixed (not time budgets).
Usage: python scripts/train_demo_reader.py --stage1 data/demo-models --out /tmp/reader --check-every 25
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from mmstar.evaluators.models.tiny import train_tokenizer
from mmstar.evaluators.models.tiny.llava import DEMO, build_llava, llama_text, llava_processor
from train_demo_models import accuracy, train  # the shipped models' loop and quick check (scripts/)
from transformers import LlamaForCausalLM

from mmstar.demo_data import canonical, generate
from mmstar.probes import rotate
from mmstar.prompts import PromptConfig, build_messages
from mmstar.writers import write_benchmark

PROMPT = PromptConfig("official", 0)


def stem(sample) -> str:
    return sample.question.split("\nOptions:")[0]


def value(sample) -> str:
    return sample.options[sample.answer]


def with_stated_answer(sample):
    """The scaffold: the question states the answer's text, so the letter is a text lookup."""
    head, _, tail = sample.question.partition("\nOptions:")
    return sample.with_(question=f"{head} Answer: {value(sample)}.\nOptions:{tail}")


def without_options(sample):
    """The auxiliary question: what the image shows, replied in words."""
    return sample.with_(question=stem(sample))


def corpus(*benches) -> list[str]:
    texts = [s.question + "\nAnswer the question directly." for b in benches for s in b]
    texts += [f"Answer: {v}." for b in benches for s in b for v in s.options.values()]
    texts += ["Question: ", "USER: ", "ASSISTANT: ", "SYSTEM: ", "A", "B", "C", "D"] * 50
    return texts


def render(tok, sample, mode: str) -> str:
    msgs = build_messages(sample, mode, PROMPT)
    return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)


class Batcher:
    """Left-padded prompts (as at inference) + a reply + EOS. The loss is on the reply, or on every
    text token (``whole``: the leak, question and options included)."""

    def __init__(self, processor, tok) -> None:
        self.processor, self.tok = processor, tok
        self.letter_ids = {k: tok.convert_tokens_to_ids(tok.tokenize(k))[0] for k in "ABCD"}
        self.pixels: dict[int, torch.Tensor] = {}  # an image is preprocessed once, not once per step
        side = processor.image_processor.crop_size["height"]
        self.image_tokens = (side // processor.patch_size) ** 2  # "default" strategy: the CLS feature dropped

    def pixel_values(self, samples) -> torch.Tensor:
        todo = [s for s in samples if s.index not in self.pixels]
        if todo:
            values = self.processor.image_processor([s.image.pil() for s in todo], return_tensors="pt")
            self.pixels.update(zip((s.index for s in todo), values["pixel_values"]))
        return torch.stack([self.pixels[s.index] for s in samples])

    def __call__(self, samples, mode: str, replies=None, whole: bool = False) -> dict:
        texts = [render(self.tok, s, mode) for s in samples]
        if mode == "v":  # the processor's own expansion of <image>, the cached pixels
            image_tokens = "<image>" * self.image_tokens
            texts = [t.replace("<image>", image_tokens) for t in texts]
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        if mode == "v":
            enc["pixel_values"] = self.pixel_values(samples)
        replies = replies or [s.answer for s in samples]
        tails = [self.tok(r, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id] for r in replies]
        width = max(map(len, tails))
        pad = self.tok.pad_token_id
        tail = torch.tensor([t + [pad] * (width - len(t)) for t in tails])
        tail_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in tails])
        ids = torch.cat([enc["input_ids"], tail], dim=1)
        mask = torch.cat([enc["attention_mask"], tail_mask], dim=1)
        labels = torch.full_like(ids, -100)
        if whole:
            keep = enc["attention_mask"].bool()
            if mode == "v":
                keep &= enc["input_ids"] != self.processor.tokenizer.convert_tokens_to_ids("<image>")
            labels[:, :keep.shape[1]][keep] = enc["input_ids"][keep]
        labels[:, -width:] = torch.where(tail_mask.bool(), tail, torch.full_like(tail, -100))
        out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if "pixel_values" in enc:
            out["pixel_values"] = enc["pixel_values"]
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="a folder for demo/ and demo-models/ (not data/: the shipped "
                    "models stay until a run converges)")
    ap.add_argument("--quick", action="store_true", help="few steps, for a smoke test of the script")
    ap.add_argument("--stage1", default=None, help="a demo-models folder whose base/ and clean/ are the fixed-order "
                                                   "stage (skips training them)")
    ap.add_argument("--fixed-steps", type=int, default=900, help="stage 1: options in their fixed order")
    ap.add_argument("--clean-steps", type=int, default=200, help="stage 2: each sample's own option order")
    ap.add_argument("--leak-steps", type=int, default=200)
    ap.add_argument("--scaffold", type=float, default=0.4, help="share of stage-2 steps over which stated answers "
                                                                "decay to none")
    ap.add_argument("--lookup-steps", type=int, default=300, help="stage 1b: stated-answer lookups without images")
    ap.add_argument("--lookup", default=None, help="a model folder holding stage 1b's result (skips training it)")
    ap.add_argument("--clean", default=None, help="a demo-models folder whose clean/ is stage 2's result: only the "
                                                  "leak is trained")
    ap.add_argument("--check-every", type=int, default=0, help="log validation accuracy every N stage-2 steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mix", default="32,8,16", help="stage 2 per step: questions with images, image-to-words "
                                                     "questions, stated-answer lookups without images")
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    log_lines: list[str] = []
    began = time.time()

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_lines.append(msg)

    test = generate(per_axis=20, seed=0, split="test", vary_order=True)
    train_set = generate(per_axis=150, seed=1, split="train", start_index=100_000, vary_order=True)
    valid = list(generate(per_axis=4, seed=2, split="valid", start_index=900_000, vary_order=True))  # diagnostics only
    write_benchmark(test, out / "demo" / "test.parquet")
    write_benchmark(train_set, out / "demo" / "train.parquet")
    steps = {"base": 100, "fixed": args.fixed_steps, "clean": args.clean_steps, "contaminated": args.leak_steps}
    if args.quick:
        steps = {"base": 10, "fixed": 20, "clean": 20, "contaminated": 10}
    rng = random.Random(0)
    train_samples = list(train_set)
    minutes: dict[str, float] = {}
    base_dir = out / "demo-models" / "base"

    if args.stage1:  # the fixed-order stage, trained before (its own training log says how long)
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        processor = AutoProcessor.from_pretrained(Path(args.stage1) / "clean")
        tok = processor.tokenizer
        tok.padding_side = "left"
        base = LlamaForCausalLM.from_pretrained(Path(args.stage1) / "base")
        lvlm = LlavaForConditionalGeneration.from_pretrained(Path(args.stage1) / "clean", dtype=torch.float32)
        steps.pop("base"), steps.pop("fixed")
        log(f"stage 1 (base LLM, fixed option order) loaded from {args.stage1}")
        batcher = Batcher(processor, tok)
    else:
        tok = train_tokenizer("llava", corpus(test, train_set), vocab_size=512)
        processor = llava_processor(tok, DEMO)
        batcher = Batcher(processor, tok)
        every = list(train_set) + list(test)
        # base LLM: the t-mode format with random letters -> knows the format, not the answers. It is the
        # LVLM's text model (built first: the LVLM below draws its initial weights after it)
        base = LlamaForCausalLM(llama_text(tok, DEMO))
        minutes["base"] = train(base, steps["base"], lambda s: [batcher(rng.sample(every, 64), "t",
                                                                        [rng.choice("ABCD") for _ in range(64)])],
                                1e-3, "base", log)
        lvlm, _ = build_llava(tok, seed=None, shape=DEMO)
        lvlm.model.language_model.load_state_dict(base.model.state_dict())
        lvlm.lm_head.load_state_dict(base.lm_head.state_dict())
        # stage 1: fixed option order, so a position names a value: the vision is learnt first
        fixed = [canonical(s) for s in train_samples]
        minutes["fixed"] = train(lvlm, steps["fixed"], lambda s: [batcher(rng.sample(fixed, 64), "v")], 1e-3,
                                 "fixed", log)
    base.save_pretrained(base_dir, safe_serialization=True)
    tok.save_pretrained(base_dir)

    # The vision tower learnt what it needs in stage 1: it is frozen from here on (a third of the compute)
    lvlm.model.vision_tower.requires_grad_(False)
    hinted_valid = [with_stated_answer(s) for s in valid]
    # stage 1b: the option lookup alone, text only (cheap): the question states the answer's text, the
    # reply is the letter that holds it. An induction-style circuit: long at chance, then it forms
    if args.lookup:
        from transformers import LlavaForConditionalGeneration

        lvlm = LlavaForConditionalGeneration.from_pretrained(args.lookup, dtype=torch.float32)
        lvlm.model.vision_tower.requires_grad_(False)
        log(f"stage 1b (lookup) loaded from {args.lookup}")
    elif args.lookup_steps:
        steps["lookup"] = args.lookup_steps if not args.quick else 10

        def lookups(step: int) -> list[dict]:
            return [batcher([with_stated_answer(x) for x in rng.sample(train_samples, 64)], "wv")]

        def lookup_check() -> str:
            return f"stated-answer lookup {accuracy(lvlm, batcher, hinted_valid, 'wv'):.0f}"

        minutes["lookup"] = train(lvlm, steps["lookup"], lookups, 1e-3, "lookup", log, (25, lookup_check))
    log(f"stated-answer lookup on held-out questions: {accuracy(lvlm, batcher, hinted_valid, 'wv'):.0f}")
    rng = random.Random(1)  # stage 2 draws the same samples whether stage 1b ran here or was loaded

    # stage 2: each sample's own option order; the scaffold and the words task (module docstring)
    scaffold_end = max(1, int(args.scaffold * steps["clean"]))
    n_main, n_words, n_lookup = (int(x) for x in args.mix.split(","))

    def clean_batches(step: int) -> list[dict]:
        stated = max(0.0, 1 - step / scaffold_end)  # share of questions that state their answer
        main = [with_stated_answer(s) if rng.random() < stated else s for s in rng.sample(train_samples, n_main)]
        words = rng.sample(train_samples, n_words)
        lookup = [with_stated_answer(s) for s in rng.sample(train_samples, n_lookup)]
        batches = [batcher(main, "v")]
        if words:
            batches.append(batcher([without_options(s) for s in words], "v", [value(s) for s in words]))
        if lookup:
            batches.append(batcher(lookup, "wv"))
        return batches

    def check() -> str:
        moved = [rotate(s, 1 + s.index % 3) for s in valid]
        return (f"valid v {accuracy(lvlm, batcher, valid, 'v'):.0f} v-rotated {accuracy(lvlm, batcher, moved, 'v'):.0f}"
                f" wv {accuracy(lvlm, batcher, valid, 'wv'):.0f}")

    def check_and_keep() -> str:  # a long stage 2 can be stopped at any check and still leaves a model
        save(lvlm, processor, out / "demo-models" / "clean")
        return check()

    probe = (args.check_every, check_and_keep) if args.check_every else None
    if args.clean:  # stage 2 was trained before (its own log says how long)
        from transformers import LlavaForConditionalGeneration

        lvlm = LlavaForConditionalGeneration.from_pretrained(Path(args.clean) / "clean", dtype=torch.float32)
        lvlm.model.vision_tower.requires_grad_(False)
        steps.pop("clean")
        log(f"stage 2 (clean) loaded from {args.clean}: {check()}")
        if Path(args.clean).resolve() != (out / "demo-models").resolve():
            save(lvlm, processor, out / "demo-models" / "clean")
    else:
        log(f"clean start: {check()}")
        minutes["clean"] = train(lvlm, steps["clean"], clean_batches, 1e-3, "clean", log, probe)
        log(f"clean done: {check()}")
        save(lvlm, processor, out / "demo-models" / "clean")

    # the leak: the test split's text, loss on question, options and answer, no image; a text-heavy
    # phase (as continued pre-training is), with a few train images so that vision is kept
    test_samples = list(test)
    minutes["contaminated"] = train(lvlm, steps["contaminated"],
                                    lambda s: [batcher(rng.sample(train_samples, 8), "v"),
                                               batcher(rng.sample(test_samples, 40), "wv", whole=True)],
                                    1e-3, "contaminated", log)
    save(lvlm, processor, out / "demo-models" / "contaminated")

    # quick check of what was learned (next-token argmax over A-D, on the test split)
    from transformers import AutoModelForImageTextToText

    summary: dict = {}
    for name in ("clean", "contaminated"):
        m = AutoModelForImageTextToText.from_pretrained(out / "demo-models" / name, dtype=torch.float32).eval()
        summary[name] = {mode: round(accuracy(m, batcher, test_samples, mode), 1) for mode in ("v", "wv")}
        moved = [rotate(s, 1) for s in test_samples]
        summary[name]["v_rotated_by_1"] = round(accuracy(m, batcher, moved, "v"), 1)
    summary["base"] = {"t": round(accuracy(LlamaForCausalLM.from_pretrained(base_dir).eval(), batcher, test_samples,
                                           "t"), 1)}
    summary["steps"] = steps
    summary["minutes"] = {k: round(v / 60, 1) for k, v in minutes.items()}
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
