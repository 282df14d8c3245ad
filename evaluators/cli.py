"""CLI commands of the evaluators: eval, models, tiny-models, demo, serve, import, benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmstar.errors import MmstarError


def _cmd_models(args: argparse.Namespace) -> int:
    from .registry import REGISTRY

    print(f"{'alias':<16} {'LVLM':<38} {'LLM backbone':<40} notes")
    for e in REGISTRY.values():
        print(f"{e.alias:<16} {e.lvlm:<38} {e.backbone or '-':<40} {e.notes}")
    print("\nAny hub id or local folder works too: mmstar eval --model ORG/NAME --backbone ORG/LLM")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig
    from mmstar.report import score_table

    from .backend import GenerationConfig
    from .registry import resolve_model
    from .runner import (
        EvalConfig,
        concrete_dtype,
        hf_factory,
        openai_factory,
        parse_modes,
        resolve_batch_size,
        run_eval,
        summary_line,
        vllm_factory,
    )

    if args.backend == "openai" and not args.base_url:
        raise MmstarError("--backend openai needs --base-url (e.g. https://api.openai.com/v1 or http://HOST:8000/v1)")
    entry = resolve_model(args.model, args.backbone, any_name=args.backend == "openai")
    modes = parse_modes(args.modes)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    config = EvalConfig(
        model=entry.lvlm, backbone=entry.backbone, modes=modes, prompt=PromptConfig(args.prompt, args.shots),
        gen=gen, batch_size=resolve_batch_size(args.batch_size, args.backend, args.device), backend=args.backend,
        model_label=entry.alias, limit=args.limit,
        overwrite=args.overwrite, progress=not args.no_progress,
        # vLLM takes no --device: its dtype "auto" follows the HF rule for the machine's default device
        dtype=concrete_dtype(args.backend, args.device if args.backend == "hf" else "auto", args.dtype),
    )
    specs = [args.data] if "," not in args.data or Path(args.data).exists() else [
        x.strip() for x in args.data.split(",") if x.strip()]
    benches = [load_benchmark(spec) for spec in specs]  # every spec is checked before any model loads
    device_map = (args.device_map or entry.defaults.get("device_map")) if args.device == "auto" else args.device_map
    if args.backend == "openai":
        factory = openai_factory(args.base_url, args.api_key_env, args.concurrency, gen)
    elif args.backend == "vllm":
        factory = vllm_factory(gen, args.tensor_parallel_size, args.max_model_len, args.gpu_memory_utilization,
                               args.images_per_prompt, args.dtype,
                               args.trust_remote_code, prefix_cache=not args.no_prefix_cache)
    else:
        factory = hf_factory(args.device, args.dtype, device_map, args.trust_remote_code, args.allow_pickle, gen,
                             prefix_cache=not args.no_prefix_cache)
    run_dirs = []
    for bench in benches:
        run_dir, scores = run_eval(bench, config, Path(args.out), factory)
        if not scores:  # a non-zero torchrun rank: rank 0 reports
            continue
        run_dirs.append(run_dir)
        for mode in modes:
            if scores.get(mode):
                print(score_table(scores[mode], title=f"\n[{mode}] {run_dir}/{mode}.jsonl"))
        print(f"\n{run_dir}: {summary_line(scores)}")
    if len(run_dirs) > 1:
        from mmstar.metrics.leaderboard import publish

        print()
        publish(run_dirs, echo=True)
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from .tiny import FAMILIES, build_tiny_pair

    families = args.family or list(FAMILIES)
    for fam in families:
        pair = build_tiny_pair(fam, Path(args.dir))
        print(f"{fam}: LVLM {pair.vlm}  backbone {pair.backbone}")
    first = families[0]
    print(f"\ntry: mmstar eval --model {Path(args.dir) / ('tiny-' + first)} "
          f"--backbone {Path(args.dir) / ('tiny-' + first + '-backbone')} --data DEMO.parquet")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), batch_size=args.batch_size, quiet=args.no_progress, device=args.device,
                    dtype=args.dtype)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .tiny import FAMILIES  # a plain tuple: tiny.py imports torch/transformers only inside builders

    p = sub.add_parser("eval", help="evaluate a model with image (v), without image (wv) and its LLM backbone (t)")
    p.add_argument("--model", required=True, help="registry alias (see `mmstar models`), hub id or local folder")
    p.add_argument("--backbone", help="LLM backbone id or folder for mode t (default: the registry's)")
    p.add_argument("--data", default="mmstar", help="benchmark file/folder or hub id (default: Lin-Chen/MMStar)")
    p.add_argument("--modes", default="v,wv,t", help="comma list of v, wv, t (default: all three)")
    p.add_argument("--backend", choices=("hf", "vllm", "openai"), default="hf")
    p.add_argument("--out", default="runs", help="output root; the run goes to OUT/<model>/<benchmark>/")
    p.add_argument("--batch-size", help="N or auto: the largest batch that fits (HF backend; the default on CUDA); "
                   "default 8 on CPU")
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--prompt", choices=("official", "letter"), default="official")
    p.add_argument("--shots", type=int, choices=(0, 2), default=2, help="in-context shots for mode t (paper: 2)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--device-map", help="e.g. auto: spread a model larger than one GPU over several")
    p.add_argument("--trust-remote-code", action="store_true", help="run code shipped with the checkpoint")
    p.add_argument("--allow-pickle", action="store_true", help="accept .bin (pickle) weights, not just safetensors")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run dir instead of resuming")
    p.add_argument("--no-prefix-cache", action="store_true",
                   help="prefill the shared system prompt + shots for every sample (A/B against the reuse)")
    p.add_argument("--base-url", help="openai backend: the API root, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai backend: env var holding the key")
    p.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm backend: GPUs per model")
    p.add_argument("--max-model-len", type=int, help="vllm backend: context length to reserve")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm backend: GPU memory fraction")
    p.add_argument("--images-per-prompt", type=int, default=1, help="vllm backend: images per prompt")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_eval)

    m = sub.add_parser("models", help="list the model registry")
    m.set_defaults(func=_cmd_models)

    t = sub.add_parser("tiny-models", help="build tiny random checkpoints of real VLM families (offline smoke test)")
    t.add_argument("dir")
    t.add_argument("--family", action="append", choices=FAMILIES)
    t.set_defaults(func=_cmd_tiny)

    d = sub.add_parser("demo", help="the main job on bundled demo data and tiny local models")
    d.add_argument("--out", default="mmstar-demo", help="output folder (runs, leaderboard, radar chart)")
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--device", default="cpu", help="cpu (default: the figures in the README), auto, cuda, cuda:1 ...")
    d.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto (bf16 on CUDA)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)


def _cmd_import(args: argparse.Namespace) -> int:
    from .imports import import_lmms_eval, import_vlmevalkit

    for file in args.files:
        path = Path(file)
        if not path.is_file():
            raise MmstarError(f"{path}: no such file")
        if args.tool == "vlmevalkit":
            res = import_vlmevalkit(path, Path(args.out), args.mode, args.model, args.benchmark)
        else:
            res = import_lmms_eval(path, Path(args.out), args.mode, args.model, args.benchmark)
        s = res.scores[args.mode]
        line = (f"{path} -> {res.run_dir}: {res.n} samples, official {s['overall']:.2f}, robust "
                f"{s['robust_overall']:.2f}, unparsed {s['unparsed']}")
        if res.peer_score is not None:
            line += f"; lmms-eval's own score {res.peer_score:.2f}, disagreeing samples {res.disagreements}"
        print(line)
    return 0


def _cmd_benchmarks(args: argparse.Namespace) -> int:
    from mmstar.benchmarks import REGISTRY, cache_dir, status_line

    for entry in REGISTRY.values():
        print(status_line(entry))
    print(f"\ncache folder: {cache_dir()} (set MMSTAR_CACHE to move it)")
    return 0


def model_kind(model_id: str, trust_remote_code: bool = False) -> str:
    """"vlm" when the checkpoint's config has a vision part, else "llm" (read from config.json only)."""
    from mmstar.errors import require

    if not Path(model_id).exists():
        from mmstar.hub import prefer_offline_if_unreachable

        prefer_offline_if_unreachable()  # before transformers reads the env
    transformers = require("transformers", "hf")
    try:
        config = transformers.AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise MmstarError(f"{model_id}: cannot read its config ({str(exc).splitlines()[0][:160]})") from None
    return "vlm" if getattr(config, "vision_config", None) is not None else "llm"


def _cmd_serve(args: argparse.Namespace) -> int:
    from .backend import GenerationConfig
    from .hf import HFBackend
    from .serve import make_server

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        raise MmstarError(f"--host {args.host} exposes the model beyond this machine; add --allow-remote "
                          "(the server has no authentication: put it behind a proxy that has)")
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    specs: dict[str, str] = {}
    for spec in args.model:  # every name is checked before any model loads
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec).name, "", spec)
        if not name or name in specs:
            raise MmstarError(f"--model {spec}: give each model a distinct NAME (NAME=PATH)")
        specs[name] = path
    models = {}
    for name, path in specs.items():
        kind = model_kind(path, args.trust_remote_code)
        models[name] = HFBackend(path, kind, gen, device=args.device, dtype=args.dtype,
                                 trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
        print(f"loaded {name} ({kind}) from {path}")
    server = make_server(models, args.host, args.port, max_batch=args.max_batch, batch_wait_s=args.batch_wait_ms / 1000)
    host, port = server.server_address[:2]
    print(f"serving {', '.join(models)} at http://{host}:{port}/v1 (batches of up to {args.max_batch}); Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.batcher.stop()  # type: ignore[attr-defined]
    return 0


def add_more_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn VLMEvalKit / lmms-eval prediction logs into run directories")
    p.add_argument("tool", choices=("vlmevalkit", "lmms-eval"))
    p.add_argument("files", nargs="+")
    p.add_argument("--mode", choices=("v", "wv", "t"), default="v", help="which mode the predictions are")
    p.add_argument("--model", help="model name (default: from the file name / folder)")
    p.add_argument("--benchmark", help="benchmark name (default: from the file name)")
    p.add_argument("--out", default="runs")
    p.set_defaults(func=_cmd_import)
    b = sub.add_parser("benchmarks", help="list the benchmark registry and what is cached")
    b.set_defaults(func=_cmd_benchmarks)
    s = sub.add_parser("serve", help="an OpenAI-compatible endpoint over local HF models (batches concurrent requests)")
    s.add_argument("--model", action="append", required=True, metavar="[NAME=]PATH",
                   help="a local folder or hub id; repeat to serve several (name defaults to the folder name)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    s.add_argument("--allow-remote", action="store_true", help="allow a --host other than loopback")
    s.add_argument("--max-batch", type=int, default=32, help="requests gathered into one generate call")
    s.add_argument("--batch-wait-ms", type=float, default=10.0, help="how long to wait for more requests")
    s.add_argument("--max-new-tokens", type=int, default=32, help="when a request gives no max_tokens")
    s.add_argument("--device", default="auto")
    s.add_argument("--dtype", default="auto")
    s.add_argument("--trust-remote-code", action="store_true")
    s.add_argument("--allow-pickle", action="store_true")
    s.set_defaults(func=_cmd_serve)
