"""Fast (torchvision) and slow (PIL) image processors per family, as families.py records them.

For every tiny family: the HF backend's default is the torchvision implementation, the manifest
(``describe()``) names the processor class and its backend, the processor takes the ``device``
that the CUDA path passes it (here the CPU), and ``--image-backend pil`` gives the
PIL one where the family has one. The two encodings of 640x480 images (which every processor
resizes) differ by exactly ``FamilyFacts.pil_level_diff`` 8-bit levels of the resized image, token
ids equal; a transformers release that changes either fails here. Greedy predictions are compared
too (not for Llama 4, whose forward fails upstream): they agree on every family.
"""

from __future__ import annotations

import io
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from mmstar.evaluators.models.families import FAMILIES as FACTS  # noqa: E402
from mmstar.evaluators.models.tiny import FAMILIES, SPECS, build_tiny_pair  # noqa: E402


@pytest.fixture(scope="module")
def requests():
    from mmstar.evaluators.backends.base import Request

    from mmstar.demo_data import generate
    from mmstar.prompts import PromptConfig, build_messages
    from mmstar.sample import ImageRef

    out = []
    for s in list(generate(per_axis=1, seed=5))[:4]:
        buf = io.BytesIO()
        s.image.pil().resize((640, 480)).save(buf, "PNG")  # lossless: both decode the same pixels
        out.append(Request(build_messages(s.with_(image=ImageRef(data=buf.getvalue())), "v", PromptConfig())))
    return out


def _level(image_processor) -> float:
    """One 8-bit level of the resized image, in the units of the processor's pixel values."""
    scale = float(getattr(image_processor, "rescale_factor", 1 / 255) or 1 / 255)
    if not getattr(image_processor, "do_normalize", False):
        return scale
    std = getattr(image_processor, "image_std", None) or [1.0]
    return scale / min(std if isinstance(std, (list, tuple)) else [std])  # the widest channel step


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_and_slow_processors_are_as_recorded(family, requests, tmp_path):
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.hf import HFBackend

    torch.set_num_threads(1)
    pair = build_tiny_pair(family, tmp_path)
    gen = GenerationConfig(max_new_tokens=4)
    fast = HFBackend(str(pair.vlm), "vlm", gen, device="cpu", workers=0)
    slow = HFBackend(str(pair.vlm), "vlm", gen, device="cpu", workers=0, image_backend="pil")
    try:
        facts = FACTS[family]
        described = fast.describe()
        assert described["image_backend"] == "torchvision"
        assert described["image_processor"] == type(fast.processor.image_processor).__name__
        # the CUDA path hands the processor a device; here the CPU, so the call is checked without a GPU
        plain = fast.prepare(requests).encoded
        fast.image_device = "cpu"
        on_device = fast.prepare(requests).encoded
        fast.image_device = None
        assert set(on_device) == set(plain)
        assert all(torch.equal(on_device[k], plain[k]) for k in plain if hasattr(plain[k], "shape"))
        if facts.pil_level_diff is None:  # torchvision only: the choice keeps it
            assert slow.image_backend == "torchvision"
            return
        assert slow.image_backend == "pil" and slow.describe()["image_processor"].endswith("Pil")
        a, b = fast.prepare(requests), slow.prepare(requests)
        worst = 0.0
        for key, x in a.encoded.items():
            y = b.encoded[key]
            if not hasattr(x, "shape"):
                continue
            assert tuple(x.shape) == tuple(y.shape), key
            if x.is_floating_point():
                worst = max(worst, float((x.float() - y.float()).abs().max()))
            else:
                assert torch.equal(x, y), key
        levels = math.ceil(worst / _level(fast.processor.image_processor) - 1e-3)
        assert levels == facts.pil_level_diff, f"{family}: {worst:.3g} = {levels} level(s)"
        if not SPECS[family].known_failure:
            assert [r.text for r in fast.generate_prepared(a)] == [r.text for r in slow.generate_prepared(b)]
    finally:
        fast.close()
        slow.close()


@pytest.mark.parametrize("family, image_backend, on_device", [
    ("llava", "auto", True),  # CLIP, bicubic: torchvision runs it on the GPU as on the CPU
    ("llava", "pil", False),  # the PIL processor has no device
    ("idefics3", "auto", False),  # LANCZOS: torchvision has none on CUDA (BICUBIC there), so the CPU keeps it
])
def test_the_cuda_choice_of_where_images_are_processed(family, image_backend, on_device, tmp_path):
    """Where a CUDA run processes images, decided on a real processor without a GPU: the plan for
    ``cuda:0`` computed from the loaded CPU backend (``plan_workers`` reads no device)."""
    from mmstar.evaluators.backends.hf import HFBackend
    from mmstar.evaluators.backends.prep_workers import cpu_budget

    pair = build_tiny_pair(family, tmp_path)
    backend = HFBackend(str(pair.vlm), "vlm", device="cpu", image_backend=image_backend)
    try:
        backend.device = "cuda:0"
        backend._setup_preparation(None, sharded=False)
        described = backend.describe()
        assert described["image_device"] == ("cuda:0" if on_device else "cpu")
        assert not backend.plan.generate  # on CUDA the parent generates
        # on the device the prefetch thread decodes and tokenises; otherwise a quarter of the cores prepare
        assert backend.plan.workers == (0 if on_device or cpu_budget() < 2 else max(1, cpu_budget() // 4))
    finally:
        backend.close()
