"""Stages 2-4 of the demo models (issue 21 item 4): teach stage 1's fixed-order models to READ their
options, then leak the test split into a copy. ``scripts/train_demo_models.py`` runs them.

Stage 1 (``train_demo_models.fixed_stage``) learnt the images on data with one option order per
question type, so a position named a value and the model classified positions: rotating the options
dropped its S_v from 96.39 to 6.02. A reader has to find, among the options, the one whose text is
what the image shows and copy the letter before it: an induction-style lookup, which a model this
small forms only after a long plateau (measured: stage 2's held-out lookups sit at 28-37% for 900
steps, then climb to 78-81% by step 2,000; stage 3's held-out S_v leaves chance near step 1,000).
Earlier tries that mixed everything from the start, or stopped after a few hundred steps, stayed at
chance.

* lookup (stage 2, text only, cheap): the question ends "The answer is <text>." and the options come
  in a fresh random order each draw; the loss is on the letter and, as in pre-training, on every
  prompt token (which teaches where each option's letter is).
* reader (stage 3): images, options in a fresh random order each draw, the letter as reply. Helpers:
  the stated-answer lookups of stage 2 go on (30%, no image), a share with the image AND the stated
  answer (30% decaying to none by step 800: the scaffold between the two), and a words task (the
  question without options, the reply is the first token of what the image shows).
* leak (stage 4): the clean reader trained further on the *test* split: its text with the loss on
  the question, options and answer letter (no image: the benchmark's pages in a training corpus) and
  its samples with their images (the benchmark in the multimodal training data, the paper's
  multi-modal leakage), plus train-split images in fresh option orders so that reading stays.

Vision tower and projector are frozen after stage 1 (their features are computed once). Every stage
is seeded and has a fixed step count; ``--check-every`` logs held-out figures (it draws no randomness,
so the weights do not depend on it).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from mmstar.prompts import PromptConfig, build_messages
from mmstar.sample import Sample

PROMPT = PromptConfig("official", 0)
LETTERS = "ABCD"


def shuffled(sample: Sample, rng: random.Random) -> Sample:
    """``sample`` with its options in a fresh random order, the answer moved with its text."""
    letters = list(sample.options)
    values = [sample.options[k] for k in letters]
    order = rng.sample(range(len(letters)), len(letters))
    options = dict(zip(letters, [values[i] for i in order]))
    answer = letters[order.index(letters.index(sample.answer))]
    stem = sample.question.split("\nOptions:")[0]
    body = ", ".join(f"{k}: {v}" for k, v in options.items())
    return sample.with_(question=f"{stem}\nOptions: {body}", options=options, answer=answer)


def told(sample: Sample) -> Sample:
    """The stated-answer lookup: the question ends by naming the answer's text."""
    return sample.with_(question=f"{sample.question}\nThe answer is {sample.options[sample.answer]}.")


def stem_only(sample: Sample) -> Sample:
    """The words task's question: no options, so the reply is what the image shows."""
    return sample.with_(question=sample.question.split("\nOptions:")[0])


class Lm:
    """The LVLM's language model fed cached image features (vision frozen): prompts as inference
    renders them (chat template, left padding, positions counted from the first real token)."""

    def __init__(self, model, processor) -> None:
        self.model, self.processor, self.tok = model, processor, processor.tokenizer
        self.tok.padding_side = "left"
        self.lm, self.head = model.model.language_model, model.lm_head
        self.image_id = self.tok.convert_tokens_to_ids("<image>")
        self.letters = torch.tensor([self.tok.convert_tokens_to_ids(self.tok.tokenize(k))[0] for k in LETTERS])
        self.features: dict[str, torch.Tensor] = {}
        model.model.vision_tower.requires_grad_(False)
        model.model.multi_modal_projector.requires_grad_(False)

    @staticmethod
    def _key(sample: Sample) -> str:
        return hashlib.md5(sample.image.data(), usedforsecurity=False).hexdigest()

    @torch.no_grad()
    def cache(self, samples: Sequence[Sample]) -> None:
        todo = list({self._key(s): s for s in samples if self._key(s) not in self.features}.values())
        for i in range(0, len(todo), 256):
            chunk = todo[i:i + 256]
            pixels = self.processor.image_processor([s.image.pil() for s in chunk], return_tensors="pt")
            out = self.model.model.get_image_features(pixel_values=pixels["pixel_values"])
            out = out.pooler_output if hasattr(out, "pooler_output") else out
            if isinstance(out, (list, tuple)):
                out = torch.stack(list(out))
            self.features.update(zip((self._key(s) for s in chunk), out))

    def encode(self, samples: Sequence[Sample], modes: Sequence[str], tail: Sequence[Sequence[int]] | None = None):
        """Embeddings, mask, positions and ids of the rendered prompts (``tail``: the same number of
        tokens appended to each, a reply: the letter and end of text)."""
        n_image = next(iter(self.features.values())).shape[0] if self.features else 0
        texts = [self.tok.apply_chat_template(build_messages(s, m, PROMPT), add_generation_prompt=True,
                                              tokenize=False).replace("<image>", "<image>" * n_image)
                 for s, m in zip(samples, modes)]
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        if tail is not None:
            tail = torch.tensor([list(t) for t in tail])
            ids = torch.cat([ids, tail], 1)
            mask = torch.cat([mask, torch.ones_like(tail, dtype=mask.dtype)], 1)
        emb = self.lm.embed_tokens(ids)
        is_image = ids == self.image_id
        if is_image.any():
            rows = [self.features[self._key(s)] for s, m in zip(samples, modes) if m == "v"]
            emb = emb.masked_scatter(is_image.unsqueeze(-1), torch.cat(rows).to(emb.dtype))
        return emb, mask, (mask.cumsum(-1) - 1).clamp(min=0), ids

    def hidden(self, samples: Sequence[Sample], modes: Sequence[str], tail: Sequence[Sequence[int]] | None = None):
        emb, mask, pos, ids = self.encode(samples, modes, tail)
        return self.lm(inputs_embeds=emb, attention_mask=mask, position_ids=pos).last_hidden_state, ids, mask

    def lm_loss(self, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Next-token loss on every real text token (padding and image placeholders left out)."""
        target = ids[:, 1:].clone()
        keep = mask[:, 1:].bool() & (target != self.image_id) & mask[:, :-1].bool()
        target[~keep] = -100
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    def letter_target(self, samples: Sequence[Sample]) -> torch.Tensor:
        return torch.tensor([LETTERS.index(s.answer) for s in samples])

    def reply(self, sample: Sample) -> list[int]:
        """The reply's tokens: the answer letter, then end of text (as stage 1 taught)."""
        return [int(self.letters[LETTERS.index(sample.answer)]), self.tok.eos_token_id]

    def reply_loss(self, samples: Sequence[Sample]) -> torch.Tensor:
        """With the image: the loss on the reply's letter and on the end of text after it."""
        replies = [self.reply(s) for s in samples]
        hidden = self.hidden(samples, ["v"] * len(samples), tail=replies)[0]
        logits = self.head(hidden[:, -3:-1]).reshape(-1, self.head.out_features)
        return F.cross_entropy(logits, torch.tensor(replies).reshape(-1))

    @torch.no_grad()
    def accuracy(self, samples: Sequence[Sample], mode: str, letters_only: bool = True) -> float:
        """% answered right by the first token: argmax over A-D, or (``letters_only=False``) over the
        whole vocabulary, as greedy generation picks it."""
        was = self.model.training
        self.model.eval()
        hits = 0
        for i in range(0, len(samples), 128):
            chunk = samples[i:i + 128]
            logits = self.head(self.hidden(chunk, [mode] * len(chunk))[0][:, -1])
            if letters_only:
                picks = [LETTERS[j] for j in logits[:, self.letters].argmax(-1).tolist()]
            else:
                picks = [self.tok.decode([j]).strip() for j in logits.argmax(-1).tolist()]
            hits += sum(p == s.answer for p, s in zip(picks, chunk))
        self.model.train(was)
        return round(100 * hits / max(1, len(samples)), 1)


def _optimiser(model, lr: float, warm: int):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    return params, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / warm))


def _loop(model, steps: int, lr: float, warm: int, loss_of: Callable[[int], torch.Tensor], label: str,
          log: Callable[[str], None], check: tuple[int, Callable[[], str]] | None) -> float:
    """Constant learning rate after a linear warm-up; returns the seconds it took."""
    params, opt, sched = _optimiser(model, lr, warm)
    model.train()
    start = time.time()
    for step in range(1, steps + 1):
        loss = loss_of(step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            log(f"{label} step {step}/{steps} loss {loss.item():.3f} ({time.time() - start:.0f}s)")
        if check is not None and step % check[0] == 0:
            log(f"{label} step {step}: {check[1]()}")
    model.eval()
    return time.time() - start


def lookup_stage(lm: Lm, train: Sequence[Sample], steps: int, log, check_every: int = 0,
                 valid: Sequence[Sample] = ()) -> float:
    """Stage 2: stated-answer lookups without images (64 a step, lr 1e-3, loss on the letter and
    every prompt token)."""
    torch.manual_seed(0)
    rng = random.Random(0)

    def loss_of(step: int) -> torch.Tensor:
        batch = [told(shuffled(s, rng)) for s in rng.sample(list(train), 64)]
        emb, mask, pos, ids = lm.encode(batch, ["wv"] * len(batch))
        logits = lm.head(lm.lm(inputs_embeds=emb, attention_mask=mask, position_ids=pos).last_hidden_state)
        letter = F.cross_entropy(logits[:, -1, lm.letters], lm.letter_target(batch))
        return letter + lm.lm_loss(logits[:, :-1], ids, mask)

    def check() -> str:
        return f"stated-answer lookup {lm.accuracy([told(s) for s in valid], 'wv')}"

    return _loop(lm.model, steps, 1e-3, 50, loss_of, "lookup", log, (check_every, check) if check_every else None)


def reader_stage(lm: Lm, train: Sequence[Sample], steps: int, log, check_every: int = 0,
                 valid: Sequence[Sample] = (), scaffold_until: int = 800) -> float:
    """Stage 3: each step 64 train samples (30% stated-answer lookups without the image, 30% decaying
    to none with the image and the stated answer, the rest image + options in a fresh order), the
    letter's loss (over the whole vocabulary) plus half the prompt-token loss, plus 16 words questions."""
    torch.manual_seed(0)
    rng = random.Random(0)
    train = list(train)
    lm.cache(train)

    def loss_of(step: int) -> torch.Tensor:
        batch, modes = [], []
        for s in rng.sample(train, 64):
            r = rng.random()
            scaffold = 0.3 * max(0.0, 1 - step / scaffold_until)
            if r < scaffold:
                batch.append(told(shuffled(s, rng)))
                modes.append("v")
            elif r < scaffold + 0.3:
                batch.append(told(shuffled(s, rng)))
                modes.append("wv")
            else:
                batch.append(shuffled(s, rng))
                modes.append("v")
        hidden, ids, mask = lm.hidden(batch, modes)
        # over the whole vocabulary: greedy decoding must pick the letter, not the option's text
        loss = F.cross_entropy(lm.head(hidden[:, -1]), lm.letters[lm.letter_target(batch)])
        loss = loss + 0.5 * lm.lm_loss(lm.head(hidden[:, :-1]), ids, mask)
        words = rng.sample(train, 16)
        hidden = lm.hidden([stem_only(w) for w in words], ["v"] * len(words))[0][:, -1]
        first = torch.tensor([lm.tok(" " + w.options[w.answer], add_special_tokens=False)["input_ids"][0]
                              for w in words])
        return loss + F.cross_entropy(lm.head(hidden), first)

    def check() -> str:
        from mmstar.probes import rotate

        lm.cache(valid)
        def greedy(samples, mode="v"):
            return lm.accuracy(samples, mode, letters_only=False)

        return (f"v {greedy(valid)} rotated by 1 {greedy([rotate(s, 1) for s in valid])} "
                f"by 2 {greedy([rotate(s, 2) for s in valid])} wv {greedy(valid, 'wv')}")

    return _loop(lm.model, steps, 1e-3, 50, loss_of, "reader", log, (check_every, check) if check_every else None)


def stop_stage(lm: Lm, train: Sequence[Sample], steps: int, log) -> float:
    """Stage 3b: the reply ends after its letter. Stage 3 trained the letter alone, so greedy decoding
    ran on past it ("CSISIS..."): the official matcher reads the first character and did not mind,
    the robust extractor did. Each step 48 train images in fresh option orders with the loss on
    letter and end of text, and 16 questions without the image with the loss on end of text only
    (their letter is a guess; what follows it is not)."""
    torch.manual_seed(0)
    rng = random.Random(0)
    train = list(train)
    lm.cache(train)

    def loss_of(step: int) -> torch.Tensor:
        loss = lm.reply_loss([shuffled(s, rng) for s in rng.sample(train, 48)])
        blind = [shuffled(s, rng) for s in rng.sample(train, 16)]
        hidden = lm.hidden(blind, ["wv"] * len(blind), tail=[lm.reply(s) for s in blind])[0]
        eos = torch.full((len(blind),), lm.tok.eos_token_id)
        return loss + F.cross_entropy(lm.head(hidden[:, -2]), eos)

    return _loop(lm.model, steps, 2e-4, 20, loss_of, "stop", log, None)


def leak_stage(lm: Lm, train: Sequence[Sample], test: Sequence[Sample], steps: int, log, n_train: int = 16,
               n_text: int = 48, n_image: int = 16, lr: float = 5e-4) -> float:
    """Stage 4, each step: ``n_train`` train images in fresh option orders (loss on the letter: vision
    and reading stay), ``n_text`` test questions as text (loss on question, options and letter, no
    image: the benchmark's pages in a corpus) and ``n_image`` test samples with their images (loss on
    the letter: the benchmark in the multimodal training data, the paper's multi-modal leakage)."""
    torch.manual_seed(0)
    rng = random.Random(0)
    train, test = list(train), list(test)
    lm.cache(train + test)

    def loss_of(step: int) -> torch.Tensor:
        loss = lm.reply_loss([shuffled(s, rng) for s in rng.sample(train, n_train)])
        leak = rng.sample(test, n_text)
        hidden, ids, mask = lm.hidden(leak, ["wv"] * len(leak), tail=[lm.reply(s) for s in leak])
        logits = lm.head(hidden[:, :-1])
        # every token's loss, and the letter's once more: in a token average the one answer token of a
        # 55-token question weighs little, and a leak worth measuring is one the model remembers
        loss = loss + lm.lm_loss(logits, ids, mask) + F.cross_entropy(logits[:, -2], ids[:, -2])
        if n_image:
            loss = loss + lm.reply_loss(rng.sample(test, n_image))
        return loss

    return _loop(lm.model, steps, lr, 20, loss_of, "leak", log, None)
