"""Secrets in run directories (issue 32, finding 10), against a real stand-in server that echoes the
credentials it was sent in its 401 body, as careless providers do: the API key, a bearer or basic
token and key-like URL parameters never reach v/wv.jsonl, and credentials inside ``--base-url`` never
reach manifest.json."""

import base64
import json

import pytest
from mmstar.evaluators.backends.openai_api import redact, redact_url

KEY = "sk-test-0123456789abcdef-SECRET"


def _run(base_url, demo_parquet, out, env_name):
    from mmstar.app.cli import main

    assert main(["eval", "--model", "remote-vlm", "--backend", "openai", "--base-url", base_url,
                 "--api-key-env", env_name, "--modes", "v,wv", "--data", str(demo_parquet), "--limit", "3",
                 "--out", str(out), "--no-progress", "--max-new-tokens", "2"]) == 0
    (run_dir,) = [p.parent for p in out.glob("*/*/manifest.json")]
    return run_dir


def _stored(run_dir):
    return {p.name: p.read_text() for p in run_dir.iterdir() if p.is_file()}


def test_an_echoed_key_is_not_stored(standin, demo_parquet, tmp_path, monkeypatch):
    url = standin("--echo-credentials")
    monkeypatch.setenv("SECRETS_TEST_KEY", KEY)
    run_dir = _run(url, demo_parquet, tmp_path / "runs", "SECRETS_TEST_KEY")
    stored = _stored(run_dir)
    records = [json.loads(x) for x in stored["v.jsonl"].splitlines()]
    assert len(records) == 3 and all(r["error"].startswith("auth: ") for r in records)
    assert "Incorrect API key provided: Bearer ***" in records[0]["error"]  # the provider's words stay
    for name, text in stored.items():
        assert KEY not in text and KEY[8:20] not in text, name


def test_credentials_in_the_base_url_stay_out_of_the_manifest_and_records(standin, demo_parquet, tmp_path,
                                                                          monkeypatch):
    url = standin("--echo-credentials")
    monkeypatch.delenv("SECRETS_TEST_NO_KEY", raising=False)
    host = url.split("://", 1)[1]
    with_creds = f"http://alice:s3cr3t-pass-word@{host}?api_key=qk-999999999&api-version=1"
    run_dir = _run(with_creds, demo_parquet, tmp_path / "runs", "SECRETS_TEST_NO_KEY")
    stored = _stored(run_dir)
    manifest = json.loads(stored["manifest.json"])
    assert manifest["backends"]["vlm"]["base_url"] == f"http://alice:***@{host}?api_key=***&api-version=1"
    basic = base64.b64encode(b"alice:s3cr3t-pass-word").decode()  # httpx sends the user-info as basic auth
    records = [json.loads(x) for x in stored["v.jsonl"].splitlines()]
    assert "Basic ***" in records[0]["error"] and "api_key=***" in records[0]["error"], records[0]["error"]
    for name, text in stored.items():
        for secret in ("s3cr3t-pass-word", "qk-999999999", basic):
            assert secret not in text, (name, secret)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://api.example.com/v1", "https://api.example.com/v1"),
    ("https://u:p%40ss@api.example.com/v1", "https://u:***@api.example.com/v1"),
    ("https://TOKEN123456@api.example.com/v1", "https://***@api.example.com/v1"),
    ("https://h/v1?access_token=abc&api-version=2024-02-01&sig=zz", "https://h/v1?access_token=***&api-version=2024-02-01&sig=***"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_leaves_ordinary_errors_alone():
    plain = "context_length: HTTP 400: This model's maximum context length is 128 tokens; image too large"
    assert redact(plain, [KEY]) == plain
    echoed = f'HTTP 401: {{"error": {{"message": "bad key {KEY}", "x-api-key": "abcdefgh1234"}}}}'
    assert KEY not in redact(echoed, [KEY]) and "abcdefgh1234" not in redact(echoed, [])
    assert "sk-***" in redact("key sk-live-abcdefghijk was revoked")  # an unknown key of a known shape
