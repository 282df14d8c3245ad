"""The backend registry: the one place that names backends. Backend names are tested here only.

Everything else asks a spec what a backend can do; a new backend is one module plus one
``register`` call, and it then runs through ``mmstar.evaluate`` and ``mmstar eval`` unchanged."""

import re
import sys
import textwrap
from dataclasses import replace

import pytest
from conftest import REPO
from mmstar.evaluators.backends import registry

from mmstar.errors import MmstarError


def test_the_registered_backends_and_what_they_can_do():
    assert registry.names() == ("hf", "vllm", "openai")
    hf, vllm, openai = (registry.get(n) for n in ("hf", "vllm", "openai"))
    assert hf.local and hf.auto_batch and hf.loglik and hf.servable and hf.dtype_rule == "device"
    assert vllm.local and not vllm.auto_batch and not vllm.loglik and vllm.dtype_rule == "engine"
    assert not openai.local and openai.dtype_rule == "server" and openai.option("base_url").required_hint
    assert registry.names(lambda s: s.servable) == ("hf",)
    with pytest.raises(MmstarError, match="unknown backend 'tgi'; choose from hf, vllm, openai"):
        registry.get("tgi")


def test_no_backend_name_is_tested_outside_the_registry():
    """`backend == "..."` branches are what the registry replaced; none may come back."""
    # `backend`, `args.backend`, `config.backend` compared with a literal (not e.g. `image_backend`)
    pattern = re.compile(r"""(?<![\w.])(?:\w+\.)?backend\s*(==|!=|\bin\b|\bnot in\b)\s*[("'\[]""")
    offenders = []
    for folder in ("mmstar", "app", "evaluators", "metrics", "curation", "viewer", "review_app", "scripts",
                   "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "registry.py" and path.parent.name == "backends":
                continue
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_options_resolve_defaults_presets_and_refuse_what_the_backend_does_not_take():
    opts = registry.resolve_options("hf", {"device": "cpu", "dtype": None}, entry_defaults={"device_map": "auto"})
    expected = {"device": "cpu", "dtype": "auto", "device_map": "auto", "trust_remote_code": False,
                "allow_pickle": False, "prefix_cache": True}
    assert {k: opts[k] for k in expected} == expected
    assert set(opts) == {o.name for o in registry.get("hf").options}  # every option, defaults filled in
    assert registry.resolve_options("vllm", {}, entry_defaults={"device_map": "auto"})["tensor_parallel_size"] == 1
    with pytest.raises(MmstarError) as err:
        registry.resolve_options("openai", {"base_url": "http://x/v1", "tensor_parallel_size": 2})
    assert "--tensor-parallel-size is for vllm backend" in str(err.value) and "--concurrency" in str(err.value)
    with pytest.raises(MmstarError, match=r"--backend openai needs --base-url \(e.g. "):
        registry.resolve_options("openai", {})
    with pytest.raises(MmstarError, match="--judge-backend openai needs --judge-base-url"):
        registry.resolve_options("openai", {}, flag_prefix="--judge-")


def test_the_cli_flags_come_from_the_registry():
    import argparse

    parser = argparse.ArgumentParser()
    registry.add_backend_arguments(parser)
    args = parser.parse_args(["--backend", "vllm", "--tensor-parallel-size", "4", "--no-prefix-cache"])
    given = registry.given_options(args)
    assert given["tensor_parallel_size"] == 4 and given["prefix_cache"] is False and given["device"] is None
    assert registry.resolve_options(args.backend, given)["tensor_parallel_size"] == 4
    assert "max_retries" not in vars(args)  # an API-only option is no flag


def test_concrete_dtype_follows_each_backends_rule():
    pytest.importorskip("torch")
    assert registry.concrete_dtype("hf", {"device": "cpu", "dtype": "auto"}) == "float32"
    assert registry.concrete_dtype("hf", {"device": "cpu", "dtype": "bfloat16"}) == "bfloat16"
    assert registry.concrete_dtype("openai", {"base_url": "http://x/v1"}) is None


ECHO_BACKEND = '''
"""A backend that answers every request with the first option letter it finds after "A:"."""
from mmstar.evaluators.backends.base import Response


class EchoBackend:
    def __init__(self, model_id, kind, gen, *, letter="A"):
        self.model_id, self.kind, self.gen, self.letter = model_id, kind, gen, letter

    def generate(self, requests):
        return [Response(text=self.letter, prompt_tokens=1, completion_tokens=1) for _ in requests]

    def rank_letters(self, requests, letters):
        raise NotImplementedError

    def describe(self):
        return {"backend": "echo", "model": self.model_id, "letter": self.letter}

    def close(self):
        pass
'''


@pytest.fixture
def echo_backend(tmp_path, monkeypatch):
    """A new backend: one module, one registration (what docs/architecture.md shows)."""
    (tmp_path / "echo_backend.py").write_text(textwrap.dedent(ECHO_BACKEND))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = registry.BackendSpec("echo", "echo_backend:EchoBackend", "answers one letter",
                                (registry.Option("letter", "A", "the letter to answer"),),
                                extra="dev", requires="echo_backend", local=False, dtype_rule="server")
    monkeypatch.setitem(registry.BACKENDS, "echo", spec)
    yield spec
    sys.modules.pop("echo_backend", None)


def test_a_new_backend_runs_through_the_api_and_the_cli(echo_backend, demo_parquet, tmp_path):
    from mmstar.app.cli import main

    import mmstar

    result = mmstar.evaluate("echo-model", data=demo_parquet, modes=["wv", "t"], backbone="echo-lm",
                             out=tmp_path / "api", backend="echo", letter="B", progress=False)
    answers = result.records
    assert set(answers["prediction"]) == {"B"} and len(answers) == 2 * 36
    assert result.scores["S_wv"] == pytest.approx(100 * (answers[answers["mode"] == "wv"]["answer"] == "B").mean())
    assert main(["eval", "--model", "echo-model", "--backbone", "echo-lm", "--data", str(demo_parquet),
                 "--modes", "wv", "--backend", "echo", "--letter", "C", "--out", str(tmp_path / "cli"),
                 "--no-progress"]) == 0
    (line,) = {p.read_text().splitlines()[0] for p in (tmp_path / "cli").glob("*/*/wv.jsonl")}
    assert '"prediction": "C"' in line
    with pytest.raises(MmstarError, match="--letter"):
        mmstar.evaluate("echo-model", data=demo_parquet, modes=["wv"], backend="hf", letter="B")
    assert replace(echo_backend, name="x").name == "x"  # specs are plain frozen data


def test_options_that_change_the_request_join_the_runs_identity(tmp_path):
    """A resume with another provider switch or reasoning effort must not mix into the old files."""
    from conftest import make_samples
    from mmstar.evaluators.models.registry import resolve_model
    from mmstar.evaluators.run.pipeline import RunOptions, plan
    from mmstar.evaluators.run.runner import prepare_run_dir

    from mmstar.sample import Benchmark

    entry = resolve_model("served-model", any_name=True)
    base = {"base_url": "http://127.0.0.1:9/v1"}

    def config(**extra):
        return plan(entry, RunOptions(backend="openai", modes=("wv",), backend_options={**base, **extra})).config

    assert "request" not in config().identity("fp")  # nothing set: the identity earlier runs had
    assert "request" not in config(concurrency=32).identity("fp")  # speed is not identity
    assert config(reasoning_effort="low").identity("fp")["request"] == {"reasoning_effort": "low"}
    bench = Benchmark("b", make_samples(3))
    prepare_run_dir(tmp_path / "run", config(extra_body={"top_k": 1}), bench)
    prepare_run_dir(tmp_path / "run", config(extra_body={"top_k": 1}), bench)  # the same: resumes
    with pytest.raises(MmstarError, match=r"holds a different run .*request"):
        prepare_run_dir(tmp_path / "run", config(extra_body={"top_k": 5}), bench)


STREAMING_ECHO = '''
"""The echo backend that also streams (base.Streams), and one that claims preparation it lacks."""
from concurrent.futures import Future

from echo_backend import EchoBackend
from mmstar.evaluators.backends.base import Response


class StreamingEcho(EchoBackend):
    window = 4
    pool_key = None
    submitted = 0

    def submit(self, request):
        StreamingEcho.submitted += 1
        done = Future()
        done.set_result(Response(text=self.letter))
        return done


class HalfPreparing(EchoBackend):
    """Has ``prepare`` but no ``generate_prepared``: the runner must not guess from what it finds."""

    prepared = 0

    def prepare(self, requests):  # a thread would swallow an exception: count the calls instead
        HalfPreparing.prepared += 1
        raise AssertionError("the spec does not claim prepares: the runner must not call prepare")


class NoRanking:
    def __init__(self, model_id, kind, gen, *, letter="A"):
        pass

    def generate(self, requests):
        return []

    def describe(self):
        return {}

    def close(self):
        pass
'''


def _spec(name, target, **capabilities):
    return registry.BackendSpec(name, target, "test backend", (registry.Option("letter", "A", "the letter"),),
                                extra="dev", requires="echo_backend", local=False, dtype_rule="server",
                                **capabilities)


@pytest.fixture
def more_backends(echo_backend, tmp_path, monkeypatch):
    (tmp_path / "echo_more.py").write_text(textwrap.dedent(STREAMING_ECHO))
    yield
    sys.modules.pop("echo_more", None)


def test_a_spec_claiming_what_its_class_lacks_is_refused_when_it_registers(more_backends, monkeypatch):
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))  # registrations end with the test
    with pytest.raises(MmstarError) as err:
        registry.register(_spec("echo-streams", "echo_backend:EchoBackend", streams=True))
    line = str(err.value)
    assert "\n" not in line and "'echo-streams' claims streams" in line and "no pool_key, submit, window" in line
    with pytest.raises(MmstarError, match=r"claims prepares .*no generate_prepared, prefetch_depth, submit_prepare"):
        registry.register(_spec("half", "echo_more:HalfPreparing", prepares=True))
    with pytest.raises(MmstarError, match="auto_batch without prepares"):  # it would silently run at batch 8
        registry.register(_spec("auto", "echo_more:HalfPreparing", auto_batch=True))
    with pytest.raises(MmstarError, match=r"claims loglik \(RanksLetters: no rank_letters\)"):
        registry.register(_spec("ll", "echo_more:NoRanking", loglik=True))
    assert not {"echo-streams", "half", "auto", "ll"} & set(registry.BACKENDS)
    assert registry.register(_spec("echo-streams", "echo_more:StreamingEcho", streams=True)).streams


def test_the_built_in_backends_implement_what_their_specs_claim():
    for name in registry.names():  # registered unchecked (no heavy import at start-up): checked here
        spec = registry.get(name)
        assert registry.unimplemented(spec, spec.constructor()) is None, name
    assert registry.get("hf").prepares and not registry.get("openai").prepares


def test_the_runner_branches_on_the_spec_not_on_what_it_finds(more_backends, demo_parquet, tmp_path, monkeypatch):
    """A class with ``prepare`` runs plain ``generate`` when its spec does not claim preparation, and a
    backend whose spec claims ``streams`` goes through the request window."""
    import mmstar

    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    registry.register(_spec("half", "echo_more:HalfPreparing"))
    registry.register(_spec("echo-streams", "echo_more:StreamingEcho", streams=True))
    plain = mmstar.evaluate("m", data=demo_parquet, modes=["wv"], out=tmp_path / "a", backend="half", letter="C",
                            progress=False)
    assert set(plain.records["prediction"]) == {"C"} and len(plain.records) == 36
    assert sys.modules["echo_more"].HalfPreparing.prepared == 0
    manifest = mmstar.open_run(plain.run_dir).manifest
    assert "streamed_with" not in manifest.modes["wv"].to_dict()
    streamed = mmstar.evaluate("m", data=demo_parquet, modes=["wv", "t"], backbone="lm", out=tmp_path / "b",
                               backend="echo-streams", letter="D", progress=False)
    assert set(streamed.records["prediction"]) == {"D"} and len(streamed.records) == 72
    assert sys.modules["echo_more"].StreamingEcho.submitted == 72
    assert mmstar.open_run(streamed.run_dir).manifest.modes["t"].to_dict()["streamed_with"] == ["wv", "t"]


def test_any_registered_backend_can_judge(echo_backend, demo_parquet, tmp_path, capsys):
    """The --judge-* flags come from the registry: the toy backend judges with its own option."""
    import json

    from mmstar.app.cli import main

    import mmstar

    run = mmstar.evaluate("echo-model", data=demo_parquet, modes=["wv"], out=tmp_path, backend="echo",
                          letter="no idea", progress=False)  # every reply unparsed: all go to the judge
    capsys.readouterr()
    assert main(["score", str(run.run_dir / "wv.jsonl"), "--judge", "echo-judge", "--judge-backend", "echo",
                 "--judge-letter", "B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["judge_seen"] == 36 and out["judge_decided"] == 36 and out["judge"]["backend"] == "echo"
    answers = [r.answer for r in mmstar.open_run(run.run_dir).records["wv"]]
    assert out["robust_judge_overall"] == pytest.approx(100 * answers.count("B") / 36, abs=0.01)
    assert main(["score", str(run.run_dir / "wv.jsonl"), "--judge-letter", "B"]) == 2  # without --judge
    assert "--judge-letter needs --judge MODEL" in capsys.readouterr().err


def test_the_judge_flags_are_the_backends_options_under_judge_names():
    import argparse

    from mmstar.evaluators.run.judge import add_judge_args, judge_config, make_judge_backend

    parser = argparse.ArgumentParser()
    registry.add_backend_arguments(parser)  # the run's own set beside the judge's: no clash
    add_judge_args(parser)
    args = parser.parse_args(["--base-url", "http://run/v1", "--judge", "j", "--judge-backend", "openai",
                              "--judge-base-url", "http://judge/v1", "--judge-extra-body", '{"top_k": 1}',
                              "--judge-concurrency", "2"])
    assert args.base_url == "http://run/v1" and args.judge_base_url == "http://judge/v1"
    config = judge_config(args)
    assert config.base_url == "http://judge/v1" and config.api_key_env == "OPENAI_API_KEY"
    assert dict(config.options) == {"extra_body": {"top_k": 1}, "concurrency": 2}
    assert config.identity()["request"] == {"extra_body": {"top_k": 1}}  # it changes what the judge is asked
    assert "request" not in judge_config(parser.parse_args(["--judge", "j"])).identity()  # as it always was
    hf_judge = judge_config(parser.parse_args(["--judge", "j", "--judge-concurrency", "2"]))
    with pytest.raises(MmstarError, match="--judge-backend hf does not take --judge-concurrency"):
        make_judge_backend(hf_judge)
