"""Typed run records: the prediction line (``v.jsonl`` / ``wv.jsonl`` / ``t.jsonl``), the per-mode
statistics (the manifest's ``modes.<mode>``) and the run manifest, with their JSON forms.

Every writer and reader of run files goes through this module, so the file contracts live in one
place (``docs/architecture.md`` lists the fields and the schema versions):

* schema 1 is what mmstar 0.1.0 wrote: no ``schema`` key anywhere. A file without one reads as 1.
* schema 2 adds the ``schema`` key to each prediction line and to the manifest; nothing else changed,
  so a schema-1 file reads with identical values.
* schema 3 adds ``finish_reason`` to the prediction line ("stop", "length"; written when the backend
  knew it): why generation ended. Schema-1 and -2 lines read it as null (unknown).

Keys this version does not know (a newer version's, or a user's own) are kept in ``extra`` and
written back unchanged: reading and rewriting a file never loses what someone else put there. A
prediction line always carries the keys the runner wrote in 0.1.0 (null where unset) and the
optional ones (``reasoning``, ``judge`` ...) only when set; a manifest keeps the keys it had, in
their order (null stays null, absent stays absent), and adds the fields set since.
Bad input is one ``DataError`` naming the file, the row and what is wrong.

Light on purpose: json and dataclasses only (no pandas, never torch).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .atomic import atomic_write_text
from .errors import DataError

SCHEMA_VERSION = 3
SCHEMA_0_1_0 = 1  # mmstar 0.1.0 wrote no "schema" key; such files read as this schema
REQUIRED = ("index", "prediction", "answer")


def _schema(value: Any, source: str | Path, row: int | None) -> int:
    if value is None:
        return SCHEMA_0_1_0
    if type(value) is not int or value < 1:
        raise DataError(source, f"schema {value!r} is not a positive integer", row)
    return value


def _written_schema(schema: int) -> int:
    # a record read from a newer version keeps its number: its extra keys are that version's
    return max(schema, SCHEMA_VERSION)


# ---------------------------------------------------------------- prediction records


@dataclass(slots=True)
class PredictionRecord:
    """One prediction line. ``choice`` / ``hit`` / ``hit_official`` / ``extract_rule`` are what the
    writer's extractor decided; scores never trust them but re-judge ``prediction`` (see scoring)."""

    index: int
    prediction: str = ""  # the raw model text ("" when the request failed)
    answer: str = ""
    mode: str | None = None  # v | wv | t (None in a bare prediction file, e.g. the official xlsx)
    choice: str | None = None  # the robust extractor's letter, None = unparsed
    hit: bool | None = None  # robust
    hit_official: bool | None = None
    category: str = ""
    l2_category: str = ""
    source: str = ""
    question: str = ""
    options: dict[str, str] | None = None
    error: str | None = None  # set: the request failed; a miss, never parsed
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    extract_rule: str | None = None
    # written only when set
    finish_reason: str | None = None  # "stop" | "length" (cut by the token budget); None = unknown
    reasoning: str | None = None  # the thinking text, kept apart; never matched
    logprobs: Any = None
    peer_score: float | None = None  # an imported peer log's own per-sample score
    judge: str | None = None  # the LLM judge's raw reply
    judge_choice: str | None = None  # the letter it named; None = it named none
    judge_seen: bool = False  # a judge looked at this record (then judge_choice is written, null or not)
    judge_audit: bool = False  # sent as an audit pick (its reply had parsed)
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.judge is not None or self.judge_choice is not None:
            self.judge_seen = True

    @property
    def answer_letter(self) -> str:
        return self.answer.strip().upper()

    def set_judge(self, reply: str, choice: str | None, audit: bool = False) -> None:
        self.judge, self.judge_choice, self.judge_seen = reply, choice, True
        self.judge_audit = self.judge_audit or audit

    def clear_judge(self) -> None:
        self.judge, self.judge_choice, self.judge_seen, self.judge_audit = None, None, False, False

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<record>", row: int | None = None) -> PredictionRecord:
        """A record from a decoded JSON line (or any mapping); ``source``/``row`` name it in errors."""
        if type(data) is not dict and not isinstance(data, Mapping):
            raise DataError(source, "prediction line is not a JSON object", row)
        if "index" not in data or "prediction" not in data or "answer" not in data:
            missing = [k for k in REQUIRED if k not in data]
            raise DataError(source, f"prediction line lacks {', '.join(missing)}", row)
        # the common case (our own files) costs one type test per field: 45,000 lines load in the viewer
        g = data.get
        index = data["index"]
        if type(index) is not int:
            if isinstance(index, str) and index.strip().lstrip("-").isdigit():
                index = int(index)
            else:
                raise DataError(source, f"index {index!r} is not an integer", row)
        options = g("options")
        if options is not None:
            if not isinstance(options, Mapping):
                raise DataError(source, f"options is not a JSON object ({type(options).__name__})", row)
            if not all(type(k) is str and type(v) is str for k, v in options.items()):
                options = {str(k): "" if v is None else str(v) for k, v in options.items()}
            elif type(options) is not dict:
                options = dict(options)
        unknown = data.keys() - _RECORD_KEYS
        extra = {k: data[k] for k in data if k in unknown} if unknown else {}  # in the file's order
        prediction, answer, error = data["prediction"], data["answer"], g("error")
        category, l2_category, source_, question = g("category"), g("l2_category"), g("source"), g("question")
        tokens_in, tokens_out = g("prompt_tokens"), g("completion_tokens")
        hit, hit_official = g("hit"), g("hit_official")
        return cls(
            index, prediction if type(prediction) is str else _text(prediction),
            answer if type(answer) is str else _text(answer), _opt_str(g("mode")), _opt_str(g("choice")),
            hit if hit is None or type(hit) is bool else _opt_bool(hit),
            hit_official if hit_official is None or type(hit_official) is bool else _opt_bool(hit_official),
            category if type(category) is str else _text(category),
            l2_category if type(l2_category) is str else _text(l2_category),
            source_ if type(source_) is str else _text(source_), question if type(question) is str else _text(question),
            options,
            (error if type(error) is str else str(error)) if error else None,  # "" / null / 0: no error, as 0.1.0
            tokens_in if tokens_in is None or type(tokens_in) is int else _opt_int(tokens_in, "prompt_tokens", source,
                                                                                  row),
            tokens_out if tokens_out is None or type(tokens_out) is int else _opt_int(tokens_out, "completion_tokens",
                                                                                     source, row),
            _opt_str(g("extract_rule")), _finish(g("finish_reason"), source, row), _opt_str(g("reasoning")),
            g("logprobs"),
            _opt_float(g("peer_score"), "peer_score", source, row), _opt_str(g("judge")), _opt_str(g("judge_choice")),
            "judge_choice" in data or "judge" in data, bool(g("judge_audit")), _schema(g("schema"), source, row), extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line: the 0.1.0 keys in their order (null where unset), the
        optional keys only when set, then the unknown keys as they were read."""
        d: dict[str, Any] = {
            "schema": _written_schema(self.schema), "index": self.index, "mode": self.mode,
            "prediction": self.prediction, "choice": self.choice, "answer": self.answer, "hit": self.hit,
            "hit_official": self.hit_official, "category": self.category, "l2_category": self.l2_category,
            "source": self.source, "question": self.question, "options": self.options, "error": self.error,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "extract_rule": self.extract_rule}
        for key in ("finish_reason", "reasoning", "logprobs", "peer_score"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        if self.judge_seen:
            if self.judge is not None:
                d["judge"] = self.judge
            d["judge_choice"] = self.judge_choice
            if self.judge_audit:
                d["judge_audit"] = True
        for key, value in self.extra.items():
            d.setdefault(key, value)  # a known key always wins over a stray copy in extra
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


_ALWAYS = ("schema", "index", "mode", "prediction", "choice", "answer", "hit", "hit_official", "category",
           "l2_category", "source", "question", "options", "error", "prompt_tokens", "completion_tokens",
           "extract_rule")
_RECORD_KEYS = frozenset(_ALWAYS) | {"finish_reason", "reasoning", "logprobs", "peer_score", "judge", "judge_choice",
                                     "judge_audit"}


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


FINISH_REASONS = ("stop", "length")


def _finish(value: Any, source: str | Path, row: int | None) -> str | None:
    if value is None or value in FINISH_REASONS:
        return value
    raise DataError(source, f"finish_reason {value!r} is not one of {', '.join(FINISH_REASONS)} or null", row)


def _opt_bool(value: Any) -> bool | None:
    if isinstance(value, str):  # a spreadsheet's cell: "False" is no hit
        return value.strip().lower() in ("true", "1", "yes")
    return None if value is None else bool(value)


def _opt_int(value: Any, key: str, source: str | Path, row: int | None) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DataError(source, f"{key} {value!r} is not an integer", row)


def _opt_float(value: Any, key: str, source: str | Path, row: int | None) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise DataError(source, f"{key} {value!r} is not a number", row)


def as_record(rec: PredictionRecord | Mapping[str, Any], row: int | None = None) -> PredictionRecord:
    """A typed record from a typed one (itself) or a mapping (a notebook's dicts, a test's)."""
    return rec if isinstance(rec, PredictionRecord) else PredictionRecord.from_dict(rec, "<records>", row)


def read_records(path: str | Path, *, warn: bool = True, problems: list[str] | None = None) -> list[PredictionRecord]:
    """Prediction lines in file order. A torn last line (a run killed mid-write, no newline) is
    skipped: said on stderr (``warn``), or as a line in ``problems`` when that list is given. A bad
    line anywhere else is a DataError naming the file and the row."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror})") from None
    lines = data.split(b"\n")
    records = []
    loads = json.loads
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = loads(raw.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (UnicodeDecodeError, ValueError) as exc:
            if i == len(lines):  # split leaves "" after a final newline: this line was never finished
                if problems is not None:
                    problems.append(f"{path}: torn last line ignored (run interrupted?)")
                elif warn:
                    print(f"warning: {path}: ignoring torn last line {i} (run interrupted?)", file=sys.stderr)
                continue
            raise DataError(path, f"invalid prediction line ({exc})", i) from None
        records.append(PredictionRecord.from_dict(obj, path, i))
    return records


def check_unique(records: list[PredictionRecord], origin: str | Path) -> list[PredictionRecord]:
    """One record per index; a repeated index is an error (a run never writes one twice, so the
    file was edited or concatenated by hand)."""
    seen: set[int] = set()
    for i, rec in enumerate(records, start=1):
        if rec.index in seen:
            raise DataError(origin, f"index {rec.index} appears more than once", i)
        seen.add(rec.index)
    return records


def record_key(rec: PredictionRecord) -> str | None:
    """A probe line's ``key`` (``"<index>:<variant>"``, unique within its file); None on a mode line."""
    key = rec.extra.get("key")
    return None if key is None else str(key)


def check_unique_keys(records: list[PredictionRecord], origin: str | Path) -> list[PredictionRecord]:
    """A probe file's lines: each has a ``key``, and none twice (a probe asks a sample several
    times, so its index repeats; the key does not)."""
    seen: set[str] = set()
    for i, rec in enumerate(records, start=1):
        key = record_key(rec)
        if key is None:
            raise DataError(origin, "probe line lacks key", i)
        if key in seen:
            raise DataError(origin, f"key {key!r} appears more than once", i)
        seen.add(key)
    return records


def records_text(records: Iterable[PredictionRecord]) -> str:
    return "".join(rec.to_json() + "\n" for rec in records)


def write_records(path: str | Path, records: Iterable[PredictionRecord]) -> None:
    """Replace a prediction file atomically (a judge, a shard merge, dropping failed lines)."""
    atomic_write_text(path, records_text(records))


def append_records(path: str | Path, records: Iterable[PredictionRecord]) -> int:
    """Append lines and make them durable before returning (one write call per batch)."""
    payload = records_text(records)
    if not payload:
        return 0
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return payload.count("\n")


# ---------------------------------------------------------------- manifest and per-mode statistics


def _as(kinds: type | tuple[type, ...], what: str) -> Callable[[Any, str, str | Path], Any]:
    """A checker for one manifest field: the value if it has one of the JSON types ``kinds`` (never a
    boolean: JSON's true is no number), else one error naming the key."""
    def check(value: Any, key: str, source: str | Path) -> Any:
        if value is None or (isinstance(value, kinds) and not isinstance(value, bool)):
            return value
        raise DataError(source, f"manifest {key} is {value!r}, not {what}")
    return check


_STR, _INT, _NUM = _as(str, "text"), _as(int, "an integer"), _as((int, float), "a number")
_OBJ, _LIST = _as(dict, "a JSON object"), _as(list, "a list")
_BATCH = _as((int, str), "an integer or \"auto\"")


class _Typed:
    """Shared by Manifest and ModeStats: field checks, unknown keys kept in ``extra``, and the keys
    the file had (so a key read as null is written as null, and an absent one stays absent)."""

    _checks: ClassVar[dict[str, Callable[[Any, str, str | Path], Any]]] = {}

    @classmethod
    def _read(cls, data: Any, source: str | Path, where: str) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise DataError(source, f"manifest {where.rstrip('.') or 'file'} is not a JSON object")
        values: dict[str, Any] = {"extra": {}, "present": tuple(data)}
        for key, value in data.items():
            check = cls._checks.get(key)
            if check is None:
                values["extra"][key] = value
            else:
                values[key] = check(value, f"{where}{key}", source)
        return values

    def _dict(self) -> dict[str, Any]:
        """The JSON object: the keys the file (or ``new``'s mapping) had, in its order, null or not;
        then the fields set since; then unknown keys added since."""
        extra: dict[str, Any] = self.extra  # type: ignore[attr-defined]
        out: dict[str, Any] = {}
        for key in self.present:  # type: ignore[attr-defined]
            if key in self._checks:
                if key != "schema":
                    out[key] = getattr(self, key)
            elif key in extra:
                out[key] = extra[key]
        for f in fields(self):  # type: ignore[arg-type]
            name = f.name
            if name in self._checks and name != "schema" and name not in out:
                value = getattr(self, name)
                if value is not None:
                    out[name] = value
        for key, value in extra.items():
            out.setdefault(key, value)
        return out

    def has(self, key: str) -> bool:
        """Whether the file this was read from had ``key`` (null or not)."""
        return key in self.present  # type: ignore[attr-defined]

    def update(self, **values: Any) -> None:
        """Set fields by name; a name this version has no field for goes to ``extra``."""
        for key, value in values.items():
            if key in self._checks and key not in ("schema", "modes"):
                setattr(self, key, value)
            else:
                self.extra[key] = value  # type: ignore[attr-defined]


@dataclass
class ModeStats(_Typed):
    """``manifest.modes.<mode>``: how a mode ran (or where an imported log came from)."""

    started: str | None = None
    finished: str | None = None
    done_before: int | None = None  # lines already in the file when this session started
    ran: int | None = None
    seconds: float | None = None  # in-run wall time, model load excluded
    retried_errors: int | None = None  # failed lines dropped on resume, to be run again
    batch_size: int | None = None
    batch_size_auto: int | None = None  # the size an automatic probe settled on (reused on resume)
    batch_probe: list[Any] | None = None  # [size, ran] of every probe step
    cpu_seconds: float | None = None
    merged_from_ranks: int | None = None  # torchrun: shards folded into the mode file
    # an imported peer log (``mmstar import``)
    imported: str | None = None
    imported_from: str | None = None
    tool: str | None = None
    peer_score: float | None = None
    peer_headline: float | None = None
    peer_reported: float | None = None
    peer_reported_from: str | None = None
    disagreements_with_official: int | None = None
    n: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<manifest>", mode: str = "") -> ModeStats:
        return cls(**cls._read(data, source, f"modes.{mode}." if mode else "modes."))

    def to_dict(self) -> dict[str, Any]:
        return self._dict()


ModeStats._checks = {
    "started": _STR, "finished": _STR, "done_before": _INT, "ran": _INT, "seconds": _NUM, "retried_errors": _INT,
    "batch_size": _INT, "batch_size_auto": _INT, "batch_probe": _LIST, "cpu_seconds": _NUM,
    "merged_from_ranks": _INT, "imported": _STR, "imported_from": _STR, "tool": _STR, "peer_score": _NUM,
    "peer_headline": _NUM, "peer_reported": _NUM, "peer_reported_from": _STR, "disagreements_with_official": _INT,
    "n": _INT}

@dataclass
class Manifest(_Typed):
    """``manifest.json``: the run identity, what the run read, how each mode ran, the judge."""

    model: str | None = None
    backbone: str | None = None
    backend: str | None = None
    prompt: str | None = None
    shots: int | None = None
    decoding: dict[str, Any] | None = None
    dtype: str | None = None
    dataset_fingerprint: str | None = None
    scoring: str | None = None  # in the identity only when not "generate"
    protocol: str | None = None  # in the identity only when not "official"
    model_label: str | None = None
    benchmark: str | None = None
    dataset: str | None = None  # the data spec the run read (the viewer's images come from it)
    n_samples: int | None = None
    created: str | None = None
    finished: str | None = None
    modes: dict[str, ModeStats] = field(default_factory=dict)
    versions: dict[str, Any] | None = None
    batch_size: int | str | None = None
    backbone_kind: str | None = None  # "extracted": S_t ran the LVLM's own LM, cut out of it
    backbone_extracted_from: str | None = None
    backends: dict[str, Any] | None = None  # kind -> the backend's own description
    judge: dict[str, Any] | None = None  # the judge's identity and per-mode counts
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def new(cls, values: Mapping[str, Any]) -> Manifest:
        """A manifest made here (not read): typed and checked like a file's, this version's schema;
        every key given is written, null or not (the runner gives the whole identity)."""
        manifest = cls.from_dict(values, "<new manifest>")
        manifest.schema = SCHEMA_VERSION
        return manifest

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<manifest>") -> Manifest:
        values = cls._read(data, source, "")
        modes = values.get("modes")
        values["modes"] = {str(m): ModeStats.from_dict(s, source, str(m)) for m, s in (modes or {}).items()}
        values["schema"] = _schema(data.get("schema"), source, None)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": _written_schema(self.schema), **self._dict()}
        out["modes"] = {m: s.to_dict() for m, s in self.modes.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str | Path = "<manifest>") -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(source, f"manifest is not valid JSON ({exc.msg})") from None
        return cls.from_dict(data, source)

    def get(self, key: str) -> Any:
        """A field by name, or an unknown key's value (identity checks compare keys by name)."""
        return getattr(self, key) if key in self._checks else self.extra.get(key)

    def mode(self, mode: str) -> ModeStats:
        """The statistics of ``mode``, created empty on first use."""
        return self.modes.setdefault(mode, ModeStats())


Manifest._checks = {
    "model": _STR, "backbone": _STR, "backend": _STR, "prompt": _STR, "shots": _INT, "decoding": _OBJ,
    "dtype": _STR, "dataset_fingerprint": _STR, "scoring": _STR, "protocol": _STR, "model_label": _STR,
    "benchmark": _STR, "dataset": _STR, "n_samples": _INT, "created": _STR, "finished": _STR, "modes": _OBJ,
    "versions": _OBJ, "batch_size": _BATCH, "backbone_kind": _STR, "backbone_extracted_from": _STR,
    "backends": _OBJ, "judge": _OBJ, "schema": lambda value, key, source: value}
