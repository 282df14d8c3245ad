"""Hugging Face transformers backend: one generic path for every model family.

LVLMs: ``AutoProcessor`` + ``AutoModelForImageTextToText`` with the model's chat template.
LLM backbones: ``AutoTokenizer`` + ``AutoModelForCausalLM`` (chat template when the tokenizer has
one, a plain transcript otherwise). Batched greedy generation with left padding.

LVLM batches run in worker processes (``workers``, ``prep_workers.py``) within a budget of the cores
this process may use: on CPU a small model's workers prepare and generate whole batches side by
side; otherwise they prepare (decode, image processing, templating, tokenising) while the parent
generates on the cores they leave. A small LLM on CPU (mode t, the curation filter's inspectors)
generates in the workers too, each with its own copy of the shared prefix's cache. Either way no
core runs two compute threads. Image processors are the ones transformers picks (torchvision-backed
where installed; ``image_backend`` chooses); on CUDA without workers their tensor work runs on the
device. ``describe()`` records all of it in the manifest.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmstar.evaluators.models.families import facts_for_model_type
from mmstar.evaluators.models.loading import load_error, resolve_device_dtype

from mmstar.errors import MmstarError, require
from mmstar.sample import ImageRef

from .autobatch import BatchTooLarge
from .base import GenerationConfig, Request, Response, render_plain
from .prefix_cache import PrefixReuse, PrefixSplit
from .prep_workers import PrepWorkers, WorkerPlan, plan_workers

IMAGE_BACKENDS = ("auto", "torchvision", "pil")  # auto: transformers' choice (torchvision when installed)


@dataclass
class Prepared:
    """A batch made ready for the model: decoded, templated and tokenised (CPU work only)."""

    n: int
    slots: list[int] = field(default_factory=list)
    conversations: list[list[dict[str, Any]]] = field(default_factory=list)
    errors: dict[int, Response] = field(default_factory=dict)
    encoded: Any = None
    gen: GenerationConfig | None = None  # this batch's own settings (a server request's); None: the backend's
    responses: list[Response] | None = None  # already generated (by a worker process)
    too_large: str = ""  # a worker's generation did not fit (BatchTooLarge's message); the parent decides
    # text-only rows as shared prefix + suffixes (prefix reuse), chosen when the batch was prepared: the
    # candidate prefix shrinks batch after batch, so the choice is made where batches pass in run order
    split: PrefixSplit | None = None


def _has_image(conversation: list[dict[str, Any]]) -> bool:
    return any(isinstance(m["content"], list) and any(p.get("type") == "image" for p in m["content"])
               for m in conversation)


def _mixes_images(conversations: list[list[dict[str, Any]]]) -> bool:
    return len({_has_image(c) for c in conversations}) > 1


def _lanczos(image_processor: Any) -> bool:
    """torchvision has no LANCZOS on CUDA (transformers falls back to BICUBIC there): such a
    processor's output on the device would not be its output on the CPU."""
    resample = getattr(image_processor, "resample", None)
    return getattr(resample, "name", str(resample)).upper().endswith("LANCZOS") or resample == 1


class HFBackend:
    """``kind`` is "vlm" (processor + image-text-to-text model) or "llm" (tokenizer + causal LM)."""

    def __init__(self, model_id: str, kind: str, gen: GenerationConfig | None = None, *, device: str = "auto",
                 dtype: str = "auto", device_map: str | None = None, trust_remote_code: bool = False,
                 allow_pickle: bool = False, prefix_cache: bool = True, workers: int | str | None = "auto",
                 image_backend: str = "auto") -> None:
        if kind not in ("vlm", "llm"):
            raise ValueError(f"kind must be 'vlm' or 'llm', not {kind!r}")
        if image_backend not in IMAGE_BACKENDS:
            raise MmstarError(f"--image-backend {image_backend!r}: use one of {', '.join(IMAGE_BACKENDS)}")
        if workers in (None, "auto"):
            workers = None
        elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise MmstarError(f"--workers must be auto or a whole number of 0 or more, not {workers!r}")
        if not Path(model_id).exists():
            from mmstar.hub import prefer_offline_if_unreachable

            prefer_offline_if_unreachable()
        self.torch = require("torch", "hf")
        self.transformers = require("transformers", "hf")
        # our own progress bar reports; transformers' per-load bars and notices would bury it
        self.transformers.utils.logging.disable_progress_bar()
        self.transformers.utils.logging.set_verbosity_error()
        self.model_id, self.kind, self.gen = model_id, kind, gen or GenerationConfig()
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        self.trust_remote_code = trust_remote_code
        kwargs: dict[str, Any] = {"dtype": self.dtype, "trust_remote_code": trust_remote_code,
                                  "use_safetensors": None if allow_pickle else True}
        if device_map:
            kwargs["device_map"] = device_map
        tf = self.transformers
        try:
            if kind == "vlm":
                self.processor = tf.AutoProcessor.from_pretrained(model_id, trust_remote_code=trust_remote_code)
                if image_backend != "auto":
                    self._choose_image_backend(model_id, image_backend)
                self.tokenizer = self.processor.tokenizer
                self.model = self._vlm_class(model_id).from_pretrained(model_id, **kwargs)
            else:
                self.processor = None
                self.tokenizer = tf.AutoTokenizer.from_pretrained(model_id, trust_remote_code=trust_remote_code)
                self.model = tf.AutoModelForCausalLM.from_pretrained(model_id, **kwargs)
        except (OSError, ValueError, ImportError, KeyError) as exc:
            raise load_error(model_id, exc) from None
        if not device_map:
            self.model.to(self.device)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.processor is not None and not self.processor.chat_template and self.tokenizer.chat_template:
            # some processors (Phi-4-multimodal) do not reload their template; the tokenizer keeps it
            self.processor.chat_template = self.tokenizer.chat_template
        self.has_template = bool(getattr(self.processor or self.tokenizer, "chat_template", None))
        # how text-only requests reach this VLM is family data (families.py), never a name check here
        facts = facts_for_model_type(getattr(self.model.config, "model_type", "")) if kind == "vlm" else None
        self.family = facts.name if facts else None
        self.text_only = facts.text_only if facts else "processor"
        # text-only prompts behind a shared context (mode t, the curation filter) prefill it once;
        # LVLM inputs carry image features the token ids do not show, so they never take this path
        self.prefix = (PrefixReuse(self.model, self.tokenizer.pad_token_id, max_new_tokens=self.gen.max_new_tokens)
                       if prefix_cache and kind == "llm" else None)
        self._setup_preparation(workers, sharded=bool(device_map))

    def _setup_preparation(self, workers: int | None, sharded: bool) -> None:
        """Where a batch's CPU work runs (``prep_workers.plan_workers``): worker processes, started
        at the first batch the run loop hands over, and the image processor's tensor work on the GPU
        when the parent prepares on CUDA."""
        image_processor = getattr(self.processor, "image_processor", None)
        self.image_backend = getattr(image_processor, "backend", None)  # "torchvision" | "pil" | None
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.plan: WorkerPlan = plan_workers(
            self.kind, self.device, requested=workers, weight_bytes=weights, sharded=sharded,
            device_capable=self.image_backend == "torchvision" and not _lanczos(image_processor),
            omp_threads=os.environ.get("OMP_NUM_THREADS"))
        self.image_device = self.plan.image_device
        self._pool: PrepWorkers | None = None
        self._threads_before: int | None = None

    @property
    def prefetch_depth(self) -> int:
        """Batches the run loop may hand over ahead of the one it waits for: one per worker."""
        return max(1, self.plan.workers)

    def submit_prepare(self, requests: Sequence[Request], gen: GenerationConfig | None = None) -> Future | None:
        """The batch to a worker process: a Future of the Prepared batch (with its responses when the
        workers generate too), or None without workers (the caller then prepares in a thread, as
        before workers existed)."""
        if self.plan.workers == 0:
            return None
        if self._pool is None:
            # forked here, from the run loop's thread, with the processor and model loaded: the
            # workers share the weights copy-on-write and start in milliseconds
            if self.plan.torch_threads is not None:
                self._threads_before = self.torch.get_num_threads()
                self.torch.set_num_threads(self.plan.torch_threads)
            self._pool = PrepWorkers(self.plan.workers, self._work, self._work, threads=self.plan.worker_threads)
        requests = list(requests)
        outer: Future = Future()
        if self.prefix is not None:
            # text with prefix reuse: the parent tokenises and picks the shared prefix, batch after batch
            # in run order as the path without workers does, so every batch gets the same prefix (and the
            # same bits) whichever worker runs it; each worker prefills that prefix once, for itself
            try:
                prepared = self.prepare(requests, gen)
            except Exception as exc:  # the batch's error, raised where the run loop waits for it
                outer.set_exception(exc)
                return outer
            inner = self._pool.submit([], gen, prepared)
        else:
            inner = self._pool.submit(requests, gen)

        def attach(done: Future) -> None:  # the parent still holds the requests: they never travel back
            try:
                prepared = done.result()
            except BaseException as exc:
                outer.set_exception(exc)
                return
            prepared.conversations = [requests[i].messages for i in prepared.slots]
            outer.set_result(prepared)

        inner.add_done_callback(attach)
        return outer

    def worker_cpu_seconds(self) -> float:
        """CPU seconds of the worker processes so far (the run loop adds them to the mode's own)."""
        return self._pool.cpu_seconds if self._pool is not None else 0.0

    def _work(self, requests: Sequence[Request], gen: GenerationConfig | None = None,
              prepared: Prepared | None = None) -> Prepared:
        """One batch in a worker: prepared (unless the parent sent it ``prepared``), and generated too
        when the plan says so. What goes back is small: no decoded images (the conversations are
        re-attached in the parent and decoded again only if the batch has to be encoded again), and no
        tensors once the responses exist."""
        if prepared is None:
            prepared = self.prepare(requests, gen)
        if self.plan.generate:
            # never split here: whether a batch that does not fit is halved or reported (the
            # --batch-size auto probe) is the parent's call, in generate_prepared
            try:
                prepared.responses = self.generate_prepared(prepared, split_on_oom=False)
                prepared.encoded = prepared.split = None
            except BatchTooLarge as exc:
                prepared.too_large = str(exc)
        prepared.conversations = []
        return prepared

    def _choose_image_backend(self, model_id: str, backend: str) -> None:
        """The image processor alone in the chosen implementation: passing ``backend`` to the whole
        processor would reach its video processor too, which has no PIL implementation (Qwen2-VL,
        InternVL, ...). A family with one implementation only keeps it (``describe()`` says which)."""
        if getattr(self.processor, "image_processor", None) is None:
            return
        self.processor.image_processor = self.transformers.AutoImageProcessor.from_pretrained(
            model_id, trust_remote_code=self.trust_remote_code, backend=backend)

    def _vlm_class(self, model_id: str) -> Any:
        """AutoModelForImageTextToText, or the class families.py names for a family the auto
        mapping leaves out (Phi-4-multimodal is a ``*ForCausalLM`` that takes images)."""
        tf = self.transformers
        config = tf.AutoConfig.from_pretrained(model_id, trust_remote_code=self.trust_remote_code)
        facts = facts_for_model_type(getattr(config, "model_type", ""))
        if facts is not None and type(config) not in tf.AutoModelForImageTextToText._model_mapping:
            return getattr(tf, facts.model_class)
        return tf.AutoModelForImageTextToText

    def describe(self) -> dict[str, Any]:
        out = {"backend": "hf", "model": self.model_id, "kind": self.kind, "device": self.device,
               "dtype": str(self.dtype).replace("torch.", ""), "trust_remote_code": self.trust_remote_code,
               "chat_template": self.has_template, "prefix_cache": self.prefix is not None}
        if self.kind == "vlm":  # how the image side ran: the processor's class and backend, where, by whom
            image_processor = getattr(self.processor, "image_processor", None)
            out.update(image_processor=type(image_processor).__name__ if image_processor is not None else None,
                       image_backend=self.image_backend, **self.plan.describe())
        else:  # who ran the batches: worker processes (prepare+generate) or the parent (none)
            out.update({k: v for k, v in self.plan.describe().items() if k != "image_device"})
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            if self._threads_before is not None:  # the process's own setting, as it was before the workers
                self.torch.set_num_threads(self._threads_before)
        if self.prefix is not None:
            self.prefix.close()
        del self.model
        if self.torch.cuda.is_available():  # give the GPU memory back before the next model loads
            gc.collect()
            self.torch.cuda.empty_cache()

    # ------------------------------------------------------------------ inputs

    @staticmethod
    def _materialise(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Decode ImageRef parts into PIL images (per request, so one bad image fails one request)."""
        out = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                content = [{"type": "image", "image": p["image"].pil()} if p.get("type") == "image"
                           and isinstance(p.get("image"), ImageRef) else p for p in content]
            out.append({**m, "content": content})
        return out

    def _encode(self, conversations: list[list[dict[str, Any]]], gen: GenerationConfig | None = None) -> Any:
        switches = (gen or self.gen).chat_template_kwargs
        if self.kind == "vlm" and self.text_only != "processor" and not any(map(_has_image, conversations)):
            return self._encode_text_only(conversations, switches)
        if self.kind == "vlm":
            options: dict[str, Any] = {"padding": True}
            if self.image_device is not None and any(map(_has_image, conversations)):
                options["device"] = self.image_device  # resize, rescale, normalise on the GPU
            return self.processor.apply_chat_template(
                conversations, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
                processor_kwargs=options, **switches)
        if self.has_template:
            texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False, **switches)
                     for c in conversations]
            # the template already holds any BOS; do not add a second one
            return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return self.tokenizer([render_plain(c) for c in conversations], return_tensors="pt", padding=True)

    def _encode_text_only(self, conversations: list[list[dict[str, Any]]], switches: Mapping[str, Any]) -> Any:
        """Text-only input for a VLM whose processor refuses it (PaliGemma: "images are expected"):
        the processor's chat template renders the prompt, the tokenizer alone encodes it."""
        if self.text_only == "none":
            raise MmstarError(f"{self.model_id}: the {self.family} processor takes no text-only input, so mode "
                              "wv cannot run on this model; run --modes v,t (t uses --backbone)")
        if not self.has_template:
            raise MmstarError(f"{self.model_id}: the {self.family} processor refuses text-only input and has no "
                              "chat template to render it with; give the checkpoint a chat template or run --modes v,t")
        texts = [self.processor.apply_chat_template(c, add_generation_prompt=True, tokenize=False, **switches)
                 for c in conversations]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        if "token_type_ids" in self.processor.model_input_names:  # all prompt: the prefix, as with an image
            enc["token_type_ids"] = self.torch.zeros_like(enc["input_ids"])
        return enc

    @staticmethod
    def prompt_lengths(prepared: Prepared) -> list[int | None]:
        """Each request's prompt tokens in a prepared batch (image tokens included; None where the
        request failed or the batch was not encoded here): ``mmstar serve`` checks them against the
        context before the batch generates, at no extra encoding."""
        out: list[int | None] = [None] * prepared.n
        mask = prepared.encoded.get("attention_mask") if prepared.encoded is not None else None
        if mask is not None:
            for slot, length in zip(prepared.slots, mask.sum(dim=1).tolist()):
                out[slot] = int(length)
        return out

    # ------------------------------------------------------------------ generation

    def prepare(self, requests: Sequence[Request], gen: GenerationConfig | None = None) -> Prepared:
        """The CPU half of a batch (image decoding, templating, tokenising, image processing). The
        runner calls it for the next batch while the model generates the current one. ``gen``
        overrides the backend's settings for this batch only (``mmstar serve``: one request's
        max_tokens, temperature and chat_template_kwargs), without touching the shared model."""
        prepared = Prepared(len(requests), gen=gen)
        for i, req in enumerate(requests):
            try:
                prepared.conversations.append(self._materialise(req.messages))
                prepared.slots.append(i)
            except MmstarError as exc:
                prepared.errors[i] = Response(error=str(exc))
        if prepared.conversations and not _mixes_images(prepared.conversations):
            prepared.encoded = self._encode(prepared.conversations, gen)
            prepared.split = self._split(prepared.encoded, gen)
        return prepared

    def generate_prepared(self, prepared: Prepared, split_on_oom: bool = True) -> list[Response]:
        """``split_on_oom=False`` (the automatic batch-size probe) raises ``BatchTooLarge`` instead
        of halving the batch, so the caller learns the size does not fit."""
        if prepared.responses is not None:
            return prepared.responses
        if prepared.too_large and not split_on_oom:  # a worker's batch did not fit: the probe learns it
            raise BatchTooLarge(prepared.too_large)
        responses: list[Response | None] = [prepared.errors.get(i) for i in range(prepared.n)]
        if prepared.conversations:
            outs = self._generate_split(prepared.conversations, prepared.encoded, split_on_oom, prepared.gen,
                                        prepared.split)
            for i, resp in zip(prepared.slots, outs):
                responses[i] = resp
        return [r if r is not None else Response(error="no response") for r in responses]

    def generate(self, requests: Sequence[Request], gen: GenerationConfig | None = None) -> list[Response]:
        return self.generate_prepared(self.prepare(requests, gen))

    def _generate_split(self, conversations: list[list[dict[str, Any]]], encoded: Any = None,
                        split_on_oom: bool = True, gen: GenerationConfig | None = None,
                        split: PrefixSplit | None = None) -> list[Response]:
        """Generate; on CUDA out-of-memory halve the batch and retry (down to single requests).
        ``split``: the prefix split ``prepare`` chose for ``encoded`` (None: no reuse)."""
        if _mixes_images(conversations):
            return self._generate_by_image_presence(conversations, gen)
        try:
            return self._generate_batch(conversations, encoded, gen, split)
        except self.torch.cuda.OutOfMemoryError as exc:
            self.torch.cuda.empty_cache()
            if not split_on_oom and len(conversations) > 1:
                raise BatchTooLarge(f"{len(conversations)} requests: {str(exc)[:160]}") from None
            if len(conversations) == 1:
                return [Response(error=f"CUDA out of memory on a single request: {str(exc)[:160]}")]
            half = len(conversations) // 2
            return (self._generate_split(conversations[:half], gen=gen)
                    + self._generate_split(conversations[half:], gen=gen))

    def _generate_by_image_presence(self, conversations: list[list[dict[str, Any]]],
                                    gen: GenerationConfig | None = None) -> list[Response]:
        """Rows with and without an image, generated as two batches: some processors and models
        cannot batch them together (Mllama fails on ``aspect_ratio_ids``; PaliGemma splices
        ``<bos>`` into the text-only row). mmstar's modes never mix them; a server's batch can."""
        out: list[Response | None] = [None] * len(conversations)
        for with_image in (True, False):
            rows = [i for i, c in enumerate(conversations) if _has_image(c) == with_image]
            for i, resp in zip(rows, self._generate_split([conversations[i] for i in rows], gen=gen)):
                out[i] = resp
        return [r if r is not None else Response(error="no response") for r in out]

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]:
        """Fast scoring without generation: one forward pass per batch; each request's answer is the
        option letter whose token (bare or with a leading space) has the highest next-token logit.
        ``Response.extra["logprobs"]`` holds the letters' log-probabilities."""
        torch = self.torch
        convs, slots, responses = [], [], [Response() for _ in requests]
        for i, req in enumerate(requests):
            try:
                convs.append(self._materialise(req.messages))
                slots.append(i)
            except MmstarError as exc:
                responses[i] = Response(error=str(exc))
        if not convs:
            return responses
        enc = self._encode(convs)
        split = self._split(enc)
        try:
            with torch.inference_mode():
                if split is not None:
                    logits = self.prefix.last_logits(split).float()
                else:
                    logits = self.model(**enc.to(self.model.device)).logits[:, -1, :].float()
        except torch.cuda.OutOfMemoryError as exc:  # the runner halves the batch and retries
            torch.cuda.empty_cache()
            raise BatchTooLarge(f"{len(convs)} requests: {str(exc)[:160]}") from None
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, i in enumerate(slots):
            scores = {}
            for letter in letters[i]:
                ids = {self._letter_id(letter), self._letter_id(" " + letter)} - {None}
                if ids:
                    scores[letter] = max(float(logprobs[row, t]) for t in ids)
            if not scores:
                responses[i] = Response(error="option letters are not single tokens for this tokenizer")
                continue
            best = max(scores, key=scores.get)
            responses[i] = Response(text=best, prompt_tokens=int(enc["attention_mask"][row].sum()),
                                    extra={"logprobs": scores})
        return responses

    def score_continuations(self, requests: Sequence[Request],
                            continuations: Sequence[Sequence[str]]) -> list[Response]:
        """Each continuation's log-likelihood after its prompt, batched (``continuations.py``)."""
        from .continuations import hf_scores

        return hf_scores(self, requests, continuations)

    def _letter_id(self, text: str) -> int | None:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ids[0] if len(ids) == 1 else None

    def _split(self, encoded: Any, gen: GenerationConfig | None = None) -> PrefixSplit | None:
        if self.prefix is None:
            return None
        if gen is not None and gen.max_new_tokens > self.prefix.max_new_tokens and self.prefix.window is not None:
            return None  # the cache's sliding-window check counts the backend's budget, not this longer one
        return self.prefix.split(encoded)

    def _generate_batch(self, conversations: list[list[dict[str, Any]]], encoded: Any = None,
                        gen: GenerationConfig | None = None, split: PrefixSplit | None = None) -> list[Response]:
        torch = self.torch
        gen = gen or self.gen
        enc = encoded
        if enc is None:  # a half batch after out-of-memory; conversations a worker prepared come back undecoded
            enc = self._encode([self._materialise(c) for c in conversations], gen)
            split = self._split(enc, gen)
        if split is not None:  # shared prefix from the cache, then the suffixes
            enc = self.prefix.generate_kwargs(split)
        else:
            enc = enc.to(self.model.device)
        if "pixel_values" in enc and enc["pixel_values"].is_floating_point():
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        sampling = {"do_sample": False} if gen.temperature <= 0 else {"do_sample": True, "temperature": gen.temperature}
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=gen.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, **sampling)
        prompt_len = enc["input_ids"].shape[1]
        new = out[:, prompt_len:]
        eos = self.model.generation_config.eos_token_id
        # a row ends at its EOS (generate pads after it); a pad token the model emits mid-answer is
        # an ordinary token, as in vLLM: stopping there would cut answers short
        stop_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        responses = []
        for row, prompt_mask in zip(new.tolist(), enc["attention_mask"].tolist()):
            n_gen = next((k + 1 for k, t in enumerate(row) if t in stop_ids), None)
            # no EOS within the budget: cut by the token limit (a shorter row without one is unknown)
            finish = "stop" if n_gen is not None else "length" if len(row) >= gen.max_new_tokens else None
            n_gen = len(row) if n_gen is None else n_gen
            text = self.tokenizer.decode(row[:n_gen], skip_special_tokens=True).strip()
            responses.append(Response(text=text, prompt_tokens=int(sum(prompt_mask)), completion_tokens=n_gen,
                                      finish_reason=finish))
        return responses
