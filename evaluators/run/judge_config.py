"""The LLM judge's settings and flags, apart from the judge itself (``judge.py``): building the command
line imports only this and the backend registry, not the extractor and scoring the judge runs on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmstar.errors import MmstarError

JUDGE_PROMPT_VERSION = "mmstar-judge-v1"


@dataclass(frozen=True)
class JudgeConfig:
    model: str
    backend: str = "hf"  # hf | vllm | openai
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    judge_all: bool = False
    audit: int = 0
    seed: int = 0
    max_new_tokens: int = 8
    device: str = "auto"
    dtype: str = "auto"
    # the judge backend's other options, as its --judge-* flags gave them (any registered backend's)
    options: tuple[tuple[str, Any], ...] = ()

    def identity(self) -> dict[str, Any]:
        """What the manifest records: a judge figure is only comparable under the same identity."""
        from mmstar.evaluators.backends.registry import identity_options

        out = {"model": self.model, "backend": self.backend, "prompt_version": JUDGE_PROMPT_VERSION,
               "judge_all": self.judge_all, "audit": self.audit, "seed": self.seed,
               "max_new_tokens": self.max_new_tokens}
        # a --judge-* option that changes what the judge is asked (--judge-extra-body ...), only when set:
        # a judge that never set one keeps the identity it always had, as a run's identity does
        request = identity_options(self.backend, dict(self.options))
        return {**out, "request": request} if request else out


def add_judge_args(parser: Any) -> None:
    """The judge flags shared by ``mmstar eval``, ``mmstar score`` and ``mmstar import``."""
    g = parser.add_argument_group("LLM judge (optional; never overrides the extractor)")
    g.add_argument("--judge", metavar="MODEL", help="judge model: a local folder, hub id, or a server's model name")
    from mmstar.evaluators.backends.registry import add_backend_arguments

    # --judge-backend and every registered backend's options as --judge-* flags: any backend can judge
    add_backend_arguments(g, flag_prefix="--judge-")
    g.add_argument("--judge-all", action="store_true", help="send every reply, not only the unparsed ones")
    g.add_argument("--judge-audit", type=int, default=0, metavar="N",
                   help="also send a seeded random sample of N parsed replies; report agreement")
    g.add_argument("--judge-seed", type=int, default=0)


def judge_config(args: Any) -> JudgeConfig | None:
    """The judge settings from parsed flags; None without ``--judge``."""
    from mmstar.evaluators.backends.registry import given_options

    given = {k: v for k, v in given_options(args, prefix="judge_").items() if v is not None}
    if not args.judge:
        for flag in ("judge_all", *(f"judge_{k}" for k in given)):
            if getattr(args, flag):
                raise MmstarError(f"--{flag.replace('_', '-')} needs --judge MODEL")
        if args.judge_audit:
            raise MmstarError("--judge-audit needs --judge MODEL")
        return None
    if args.judge_audit < 0:
        raise MmstarError("--judge-audit must be 0 or more")
    base_url, key_env = given.pop("base_url", None), given.pop("api_key_env", "OPENAI_API_KEY")
    return JudgeConfig(args.judge, args.judge_backend, base_url, key_env, args.judge_all, args.judge_audit,
                       args.judge_seed, options=tuple(sorted(given.items())))

