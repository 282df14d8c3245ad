"""CLI commands of the evaluators: eval, models, tiny-models, demo, serve, import, benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mmstar.errors import MmstarError

if TYPE_CHECKING:
    from mmstar.evaluators.run.pipeline import RunOptions


def _cmd_models(args: argparse.Namespace) -> int:
    from mmstar.evaluators.models.registry import REGISTRY

    statuses = {}
    if args.check:
        from mmstar.evaluators.models.families import FAMILIES
        from mmstar.evaluators.models.modelcheck import family_status

        statuses = {name: family_status(facts) for name, facts in FAMILIES.items()}
    rows = [(e.alias, e.family, e.text_only, str(e.max_new_tokens or "-"), e.lvlm, e.backbone or "-")
            for e in REGISTRY.values()]
    header = ("alias", "family", "text-only", "max-new", "LVLM", "LLM backbone")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + ("  check" if args.check else ""))
    for row, e in zip(rows, REGISTRY.values()):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths))
        if args.check:
            st = statuses[e.family]
            line += "  ok" if st.ok else f"  MISSING: {st.problem()} -> {st.install_hint()}"
        print(line.rstrip())
        if args.notes and e.notes:
            print(f"    {e.notes}")
    if args.check:
        ready = sum(statuses[e.family].ok for e in REGISTRY.values())
        print(f"\n{ready} of {len(REGISTRY)} aliases can run with the installed packages")
    print("\nAny hub id or local folder works too: mmstar eval --model ORG/NAME --backbone ORG/LLM")
    return 0


def run_options(args: argparse.Namespace) -> RunOptions:
    """The typed options of a parsed ``mmstar eval`` command line."""
    from mmstar.evaluators.backends.registry import given_options
    from mmstar.evaluators.run.pipeline import RunOptions

    return RunOptions(modes=args.modes, backend=args.backend, batch_size=args.batch_size, limit=args.limit,
                      prompt=args.prompt, shots=args.shots, max_new_tokens=args.max_new_tokens,
                      protocol=args.protocol, thinking=args.thinking, overwrite=args.overwrite,
                      progress=not args.no_progress, probes=args.probes, probe_seed=args.probe_seed,
                      probe_words=args.probe_words, backend_options=given_options(args))


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Several models and/or a --config file: every (model, benchmark) pair, failures reported at the end."""
    from mmstar.evaluators.run.judge_config import judge_config
    from mmstar.evaluators.run.pipeline import RunOptions
    from mmstar.evaluators.run.sweep import evaluate_sweep, load_sweep_config, sweep_from_flags

    from .publishing import report

    judge = judge_config(args)  # judge flags are checked before any model loads
    options = run_options(args)
    out = args.out
    if args.config:
        if args.model:
            raise MmstarError("give the models in --config or with --model, not both")
        spec = load_sweep_config(Path(args.config))
        # the config's options replace the flags' values
        options = RunOptions.from_mapping(dict(spec.options), origin=args.config, base=options)
        out = spec.out or out
    else:
        spec = sweep_from_flags(args.model, args.backbone, args.data)
    results = evaluate_sweep([(m.name, m.backbone) for m in spec.models], spec.data, options, Path(out), judge)
    return report(results, Path(out))


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmstar.evaluators.run.judge_config import judge_config
    from mmstar.evaluators.run.pipeline import load_data, plan, resolve_entry, run_planned
    from mmstar.evaluators.run.sweep import split_list

    from mmstar.report import score_table

    if args.config or not args.model or len(split_list(args.model)) > 1:
        if not args.config and not args.model:
            raise MmstarError("give --model NAME (or a comma list) or --config SWEEP.yaml")
        return _cmd_sweep(args)
    options = run_options(args)  # every flag is checked before any model loads
    judge = judge_config(args)
    entry = resolve_entry(args.model, args.backbone, options.backend)
    eval_plan = plan(entry, options)
    benches = [load_data(spec) for spec in split_list(args.data)]  # all checked before any model loads
    run_dirs = []
    for bench in benches:
        result = run_planned(bench, eval_plan, Path(args.out), judge)
        if not result.scores:  # a non-zero torchrun rank: rank 0 reports
            continue
        run_dirs.append(result.run_dir)
        for mode in options.modes:
            if result.scores.get(mode):
                print(score_table(result.scores[mode], title=f"\n[{mode}] {result.run_dir}/{mode}.jsonl"))
        if result.scores.get("probes"):
            from mmstar.probe_scores import probe_table

            print("\n" + probe_table(result.scores["probes"]))
        print(f"\n{result.run_dir}: {result.summary()}")
    if len(run_dirs) > 1:
        from .publishing import print_table

        print()
        print_table(run_dirs)
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    import importlib.util

    from mmstar.evaluators.models.tiny import FAMILIES, SPECS, build_tiny_pair

    families = [f.strip() for spec in (args.family or [",".join(FAMILIES)]) for f in spec.split(",") if f.strip()]
    for fam in families:  # every name is checked before anything is built
        if fam not in SPECS:
            raise MmstarError(f"--family {fam}: unknown tiny family; choose from {', '.join(FAMILIES)}")
        missing = [m for m in SPECS[fam].needs if importlib.util.find_spec(m) is None]
        if missing:
            raise MmstarError(f"--family {fam}: its processor needs {', '.join(missing)}; "
                              f"pip install {' '.join(missing)}")
    for fam in families:
        pair = build_tiny_pair(fam, Path(args.dir))
        print(f"{fam}: LVLM {pair.vlm}  backbone {pair.backbone}")
        if SPECS[fam].known_failure:
            print(f"  note: built, but it does not run: {SPECS[fam].known_failure}")
    first = families[0]
    print(f"\ntry: mmstar eval --model {Path(args.dir) / ('tiny-' + first)} "
          f"--backbone {Path(args.dir) / ('tiny-' + first + '-backbone')} --data DEMO.parquet")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), batch_size=args.batch_size, quiet=args.no_progress, device=args.device,
                    dtype=args.dtype)


class _FamilyAction(argparse._AppendAction):
    """``tiny-models --family``: its help lists the tiny families, read only when that help is shown, so
    building the command line never imports the 15 tiny builders (``mmstar eval --help`` did)."""

    @property  # type: ignore[override]
    def help(self) -> str:
        from mmstar.evaluators.models.tiny import FAMILIES

        return f"families to build (repeat or comma-separate; default: all): {', '.join(FAMILIES)}"

    @help.setter
    def help(self, _value: str | None) -> None:  # argparse sets it at construction: the property answers
        pass


def add_commands(sub: argparse._SubParsersAction) -> None:
    from mmstar.evaluators.backends.registry import add_backend_arguments
    from mmstar.evaluators.run.choices import PROMPTS, PROTOCOLS, SHOTS, THINKING

    p = sub.add_parser("eval", help="evaluate a model with image (v), without image (wv) and its LLM backbone (t)")
    p.add_argument("--model", help="registry alias (see `mmstar models`), hub id or local folder; a comma list "
                   "runs a sweep (every model x every --data, one run dir each, table + OUT/leaderboard.csv)")
    p.add_argument("--backbone", help="LLM backbone id or folder for mode t (default: the registry's); in a sweep "
                   "one for all models or a comma list, one per model")
    p.add_argument("--data", default="mmstar", help="benchmark file/folder or hub id, or a comma list "
                   "(default: Lin-Chen/MMStar)")
    p.add_argument("--config", help="sweep file (YAML or JSON): models, data, out, options "
                   "(see evaluators/run/sweep.py)")
    p.add_argument("--modes", default="v,wv,t", help="comma list of v, wv, t (default: all three)")
    p.add_argument("--out", default="runs", help="output root; the run goes to OUT/<model>/<benchmark>/")
    p.add_argument("--batch-size", help="N or auto: the largest batch that fits (HF backend; the default on CUDA); "
                   "default 8 on CPU")
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--prompt", choices=PROMPTS, default="official")
    p.add_argument("--shots", type=int, choices=SHOTS, default=2, help="in-context shots for mode t (paper: 2)")
    p.add_argument("--max-new-tokens", type=int,
                   help="generation budget (default: 32 under --protocol official, the model's own under reasoning)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="official",
                   help="official: 32 new tokens, greedy (the paper's); reasoning: the registry's budget, thinking on")
    p.add_argument("--thinking", choices=THINKING,
                   help="turn the chat template's thinking switch on or off (e.g. enable_thinking)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run dir instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--probes", default="", metavar="P[,P...]",
                   help="leakage probes beside the modes: order (every rotation of the options, in the modes "
                        "asked), slots (fill in a masked wrong option, wv/t), swap (another sample's image, v), recall "
                        "(each option's text scored as the reply to the question without options, wv/t; hf, vllm)")
    p.add_argument("--probe-seed", type=int, default=0, help="seed of the probes' variants (masks, image swap)")
    p.add_argument("--probe-words", action="store_true",
                   help="slots also masks a content word of each question (chosen by the seed)")
    add_backend_arguments(p)  # --backend and each backend's own options, from the backend registry
    from mmstar.evaluators.run.judge_config import add_judge_args

    add_judge_args(p)
    p.set_defaults(func=_cmd_eval)

    m = sub.add_parser("models", help="list the model registry")
    m.add_argument("--check", action="store_true",
                   help="say for every alias whether the installed packages have what it needs, and what to install")
    m.add_argument("--notes", action="store_true", help="print each alias's notes (backbone provenance etc.)")
    m.set_defaults(func=_cmd_models)

    t = sub.add_parser("tiny-models", help="build tiny random checkpoints of real VLM families (offline smoke test)")
    t.add_argument("dir")
    t.add_argument("--family", action=_FamilyAction, metavar="F[,F...]")
    t.set_defaults(func=_cmd_tiny)

    d = sub.add_parser("demo", help="the main job on bundled demo data and tiny local models")
    d.add_argument("--out", default="mmstar-demo", help="output folder (runs, leaderboard, radar chart)")
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--device", default="cpu", help="cpu (default: the figures in the README), auto, cuda, cuda:1 ...")
    d.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto (bf16 on CUDA)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)


def _cmd_import(args: argparse.Namespace) -> int:
    from mmstar.evaluators.run.judge import judge_config, judge_run_dir

    from mmstar.report import judge_line
    from mmstar.runs import compute_scores

    from .peerlogs import import_lmms_eval, import_vlmevalkit

    judge = judge_config(args)
    if args.acc and (args.tool != "vlmevalkit" or len(args.files) != 1):
        raise MmstarError("--acc goes with one VLMEvalKit prediction file")
    for file in args.files:
        path = Path(file)
        if not path.is_file():
            raise MmstarError(f"{path}: no such file")
        if args.tool == "vlmevalkit":
            res = import_vlmevalkit(path, Path(args.out), args.mode, args.model, args.benchmark,
                                    Path(args.acc) if args.acc else None)
        else:
            res = import_lmms_eval(path, Path(args.out), args.mode, args.model, args.benchmark)
        s = res.scores[args.mode]
        line = (f"{path} -> {res.run_dir}: {res.n} samples, official {s['overall']:.2f}, robust "
                f"{s['robust_overall']:.2f}, unparsed {s['unparsed']}")
        peers = res.peer_line("lmms-eval" if args.tool == "lmms-eval" else "VLMEvalKit")
        print(line + (f"; {peers}" if peers else ""))
        if judge is not None:
            judge_run_dir(res.run_dir, judge)
            print(f"  {judge_line(compute_scores(res.run_dir)[args.mode])}")
    return 0


def _cmd_benchmarks(args: argparse.Namespace) -> int:
    from mmstar.benchmarks import REGISTRY, cache_dir, status_line

    for entry in REGISTRY.values():
        print(status_line(entry))
    print(f"\ncache folder: {cache_dir()} (set MMSTAR_CACHE to move it)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from mmstar.evaluators.backends import registry as backends
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.serve import check_exposure, make_server
    from mmstar.evaluators.models.modelcheck import model_kind

    key = None
    if args.serve_api_key_env:
        key = os.environ.get(args.serve_api_key_env, "")
        if not key:
            raise MmstarError(f"--api-key-env {args.serve_api_key_env}: that environment variable is not set "
                              "(or empty); export the key there first")
    check_exposure(args.host, key)  # before any model loads
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    specs: dict[str, str] = {}
    for spec in args.model:  # every name is checked before any model loads
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec).name, "", spec)
        if not name or name in specs:
            raise MmstarError(f"--model {spec}: give each model a distinct NAME (NAME=PATH)")
        specs[name] = path
    options = backends.resolve_options(args.backend, backends.given_options(args))
    models = {}
    for name, path in specs.items():
        kind = model_kind(path, options.get("trust_remote_code", False))
        models[name] = backends.create(args.backend, path, kind, gen, options)
        print(f"loaded {name} ({kind}) from {path}")
    server = make_server(models, args.host, args.port, max_batch=args.max_batch,
                         batch_wait_s=args.batch_wait_ms / 1000, api_key=key, allowed_hosts=tuple(args.allowed_host),
                         max_body_bytes=args.max_body_bytes)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    guard = f"; requests need the key in ${args.serve_api_key_env}" if key else ""
    print(f"serving {', '.join(models)} at http://{shown}:{port}/v1 (batches of up to {args.max_batch}{guard}); "
          "Ctrl-C stops", flush=True)
    try:
        server.serve_forever()  # uvicorn: Ctrl-C / SIGTERM finish the requests in flight, then return
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _cmd_backbone_extract(args: argparse.Namespace) -> int:
    from mmstar.evaluators.models.backbone import extract_backbone

    res = extract_backbone(args.vlm, Path(args.out), trust_remote_code=args.trust_remote_code,
                           allow_pickle=args.allow_pickle, overwrite=args.overwrite)
    print(f"{res.source} ({res.family}): language model -> {res.out} as {res.backbone_class}, {res.n_tensors} tensors")
    print(f"S_t with it is labelled 'extracted' (the LVLM's LM after multimodal training, not the original LLM): "
          f"mmstar eval --model {res.source} --backbone {res.out}")
    return 0


def add_more_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn VLMEvalKit / lmms-eval prediction logs into run directories")
    p.add_argument("tool", choices=("vlmevalkit", "lmms-eval"))
    p.add_argument("files", nargs="+")
    p.add_argument("--mode", choices=("v", "wv", "t"), default="v", help="which mode the predictions are")
    p.add_argument("--model", help="model name (default: from the file name / folder)")
    p.add_argument("--benchmark", help="benchmark name (default: from the file name)")
    p.add_argument("--out", default="runs")
    p.add_argument("--acc", help="VLMEvalKit's own *_acc.csv (default: {stem}_acc.csv next to the file, if any)")
    from mmstar.evaluators.run.judge_config import add_judge_args

    add_judge_args(p)
    p.set_defaults(func=_cmd_import)
    bb = sub.add_parser("backbone", help="LLM backbones: extract an LVLM's language model as a standalone checkpoint")
    bsub = bb.add_subparsers(dest="backbone_cmd", required=True)
    ex = bsub.add_parser("extract", help="save an LVLM's language model as a causal-LM checkpoint (S_t 'extracted')")
    ex.add_argument("vlm", help="local folder or hub id of the LVLM")
    ex.add_argument("--out", required=True, help="folder to write (safetensors, tokenizer, chat template, marker)")
    ex.add_argument("--trust-remote-code", action="store_true")
    ex.add_argument("--allow-pickle", action="store_true", help="accept .bin (pickle) weights")
    ex.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    ex.set_defaults(func=_cmd_backbone_extract)
    b = sub.add_parser("benchmarks", help="list the benchmark registry and what is cached")
    b.set_defaults(func=_cmd_benchmarks)
    s = sub.add_parser("serve", help="an OpenAI-compatible endpoint over local HF models (batches concurrent "
                       "requests; streams; bearer key)")
    s.add_argument("--model", action="append", required=True, metavar="[NAME=]PATH",
                   help="a local folder or hub id; repeat to serve several (name defaults to the folder name)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    s.add_argument("--api-key-env", dest="serve_api_key_env", metavar="NAME",
                   help="environment variable holding a key: every request must send it as a bearer token (401 "
                   "otherwise); a --host beyond loopback needs it, of at least 16 characters")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host header name answered besides loopback names and --host (e.g. a reverse proxy's "
                   "public name); others get 403, against DNS rebinding")
    s.add_argument("--max-body-bytes", type=int, default=None, metavar="N",
                   help="the largest request body (413 beyond it; default 64 MiB). Images are capped at "
                   "$MMSTAR_MAX_IMAGE_PIXELS pixels (default 64,000,000)")
    s.add_argument("--max-batch", type=int, default=32, help="requests gathered into one generate call")
    s.add_argument("--batch-wait-ms", type=float, default=10.0, help="how long to wait for more requests")
    s.add_argument("--max-new-tokens", type=int, default=32, help="when a request gives no max_tokens")
    from mmstar.evaluators.backends.registry import add_backend_arguments, names

    add_backend_arguments(s, backends=names(lambda spec: spec.servable))
    s.set_defaults(func=_cmd_serve)
