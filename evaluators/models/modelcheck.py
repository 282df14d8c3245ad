"""Does the installed software run a registry alias? (``mmstar models --check`` and a guard in eval).

Reads the family facts and asks the installed transformers whether it has the family's classes,
and the import system whether the processor's extra packages are importable. Nothing is loaded
or downloaded; transformers is imported only when a check runs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from mmstar.errors import MmstarError, require

from .families import FAMILIES, FamilyFacts
from .registry import ModelEntry


@dataclass(frozen=True)
class FamilyStatus:
    family: str
    missing_classes: tuple[str, ...] = ()
    missing_packages: tuple[str, ...] = ()
    transformers_version: str | None = None  # None: transformers itself is not installed

    @property
    def ok(self) -> bool:
        return self.transformers_version is not None and not self.missing_classes and not self.missing_packages

    def install_hint(self) -> str:
        """What to pip install to make the family work ("" when nothing is missing)."""
        parts = []
        if self.transformers_version is None:
            parts.append("pip install 'mmstar[hf]'")
        elif self.missing_classes:
            parts.append("pip install -U transformers")
        if self.missing_packages:
            parts.append("pip install " + " ".join(self.missing_packages))
        return "; ".join(parts)

    def problem(self) -> str:
        """One phrase naming what is missing ("" when nothing is)."""
        if self.transformers_version is None:
            return "transformers is not installed"
        parts = []
        if self.missing_classes:
            parts.append(f"transformers {self.transformers_version} has no {', '.join(self.missing_classes)}")
        if self.missing_packages:
            parts.append(f"the processor needs {', '.join(self.missing_packages)}")
        return "; ".join(parts)


def _importable(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def family_status(facts: FamilyFacts) -> FamilyStatus:
    missing_packages = tuple(p for p in facts.needs if not _importable(p))
    if not _importable("transformers"):
        return FamilyStatus(facts.name, (), missing_packages, None)
    import transformers

    classes = [facts.model_class, facts.processor_class] + ([facts.backbone_class] if facts.backbone_class else [])
    # hasattr resolves transformers' lazy attributes: a class of a newer release is simply absent
    missing_classes = tuple(c for c in classes if not hasattr(transformers, c))
    return FamilyStatus(facts.name, missing_classes, missing_packages, transformers.__version__)


def require_family(entry: ModelEntry) -> None:
    """Raise one clear line when the installed software cannot run a registry alias's family.
    Models outside the registry's families (custom ids and folders) are left to the loader."""
    facts = FAMILIES.get(entry.family)
    if facts is None:
        return
    status = family_status(facts)
    if not status.ok:
        raise MmstarError(f"{entry.alias} (family {facts.name}): {status.problem()}; {status.install_hint()}")


def model_kind(model_id: str, trust_remote_code: bool = False) -> str:
    """"vlm" when the checkpoint's config has a vision part, else "llm" (read from config.json only)."""
    if not Path(model_id).exists():
        from mmstar.hub import prefer_offline_if_unreachable

        prefer_offline_if_unreachable()  # before transformers reads the env
    transformers = require("transformers", "hf")
    try:
        config = transformers.AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise MmstarError(f"{model_id}: cannot read its config ({str(exc).splitlines()[0][:160]})") from None
    return "vlm" if getattr(config, "vision_config", None) is not None else "llm"
