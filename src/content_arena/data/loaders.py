"""Load labelled moderation data from the formats Content Arena understands.

Every loader reads the file as bytes, decodes it line by line (so a bad byte is reported with its line
number), accepts a UTF-8 BOM and CRLF line ends, and turns each data row into an :class:`Example` with a
binary label (1 = toxic, 0 = clean). Malformed rows are never dropped silently: with ``on_error="raise"``
(the default) up to ``max_errors`` of them are collected and raised as one :class:`DataError`; with
``on_error="skip"`` they are skipped and listed in the ``warnings`` attribute of the returned list.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("beep", "unsmile", "jigsaw", "csv", "tsv", "jsonl", "seed")
ON_ERROR_MODES: tuple[str, ...] = ("raise", "skip")
SEED_CORPUS_FILE = "seed_corpus.tsv"

_LABEL_WORDS: dict[str, int] = {
    "0": 0,
    "1": 1,
    "false": 0,
    "true": 1,
    "clean": 0,
    "toxic": 1,
    "no": 0,
    "yes": 1,
}
_LABEL_HELP = "0/1/true/false/toxic/clean/yes/no"
_BEEP_HATE = {"hate": 1, "offensive": 1, "none": 0}
_JIGSAW_COLUMNS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
_UNSMILE_CATEGORIES = (
    "여성/가족",
    "남성",
    "성소수자",
    "인종/국적",
    "연령",
    "지역",
    "종교",
    "기타 혐오",
    "악플/욕설",
    "clean",
    "개인지칭",
)
_QUOTED_FIELD = re.compile(r'"((?:[^"]|"")*)"')
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Example:
    """One labelled text: ``label`` is 1 for toxic, 0 for clean."""

    text: str
    label: int
    lang: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.label not in (0, 1) or isinstance(self.label, bool):
            raise ValueError(f"Example.label must be the int 0 or 1, got {self.label!r}")


class DataError(ValueError):
    """A data file could not be read; the message names the file and the line(s)."""

    def __init__(self, message: str, *, path: str = "", errors: Sequence[str] = (), count: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.errors: tuple[str, ...] = tuple(errors)
        self.count = count or len(self.errors)


class LoadedExamples(list[Example]):
    """The list :func:`load_examples` returns; ``warnings`` lists the rows skipped with on_error="skip"."""

    def __init__(
        self, examples: Sequence[Example] = (), *, path: str = "", warnings: Sequence[str] = ()
    ) -> None:
        super().__init__(examples)
        self.path = path
        self.warnings: list[str] = list(warnings)


class _RowError(Exception):
    """Raised by row parsers; turned into a ``file:line: message`` entry by the collector."""


class _Collector:
    """Collects row errors, keeping the first ``max_errors`` messages and counting the rest."""

    def __init__(self, path: str, on_error: str, max_errors: int) -> None:
        self.path = path
        self.on_error = on_error
        self.max_errors = max_errors
        self.messages: list[str] = []
        self.count = 0

    def add(self, lineno: int, message: str) -> None:
        self.count += 1
        if self.on_error == "skip" or len(self.messages) < self.max_errors:
            self.messages.append(f"{self.path}:{lineno}: {message}")

    def fatal(self, lineno: int, message: str) -> DataError:
        """An error that stops reading (bad header, wrong encoding), with any row errors seen before it."""
        text = f"{self.path}:{lineno}: {message}"
        earlier = self.messages[: self.max_errors]
        full = text + "".join(f"\n  before that: {m}" for m in earlier)
        return DataError(full, path=self.path, errors=[*earlier, text], count=self.count + 1)

    def raise_if_needed(self) -> None:
        if self.on_error == "raise" and self.count:
            raise DataError(self._summary(), path=self.path, errors=self.messages, count=self.count)

    def _summary(self) -> str:
        if self.count == 1:
            return self.messages[0]
        shown = len(self.messages)
        head = f"{self.path}: {self.count} malformed rows"
        if shown < self.count:
            head += f" (first {shown} shown)"
        return head + ":\n" + "\n".join(f"  {m}" for m in self.messages)


# --------------------------------------------------------------------------------------------------- labels


def parse_label(value: object) -> int:
    """Turn 0/1, true/false, toxic/clean or yes/no (any case, also as bool/int/float) into 0 or 1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _LABEL_WORDS:
            return _LABEL_WORDS[word]
        if word in ("0.0", "1.0"):
            return int(float(word))
    raise ValueError(f"label {value!r} is not one of {_LABEL_HELP}")


def _score(value: str, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise _RowError(f"{column} {value!r} is not a finite number")
    return number


def _binary_flag(value: str, column: str) -> int:
    word = value.strip()
    if word in ("0", "1", "0.0", "1.0"):
        return int(float(word))
    raise _RowError(f"{column} {value!r} is not 0 or 1")


def _text(value: object, column: str = "text") -> str:
    if not isinstance(value, str):
        raise _RowError(f"{column} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise _RowError(f"empty {column}")
    return text


def _label(value: object) -> int:
    try:
        return parse_label(value)
    except ValueError as err:
        raise _RowError(str(err)) from None


def _optional(value: object, column: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RowError(f"{column} must be a string, got {type(value).__name__}")
    return value.strip() or None


# --------------------------------------------------------------------------------------------------- reading

Row = dict[str, str]
RowParser = Callable[[Row], Example]


def _decoded_lines(data: bytes, errors: _Collector, *, header: bool) -> Iterator[tuple[int, str]]:
    """Yield (line number, text with its line end) for every line that decodes as UTF-8.

    A line that does not decode is a row error, except the first line of a format with a header.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise errors.fatal(1, "file is UTF-16 encoded; save it as UTF-8")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    for lineno, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as err:
            message = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            if header and lineno == 1:
                raise errors.fatal(lineno, f"header line is {message}") from None
            errors.add(lineno, message)


def _unquote(field: str) -> str:
    match = _QUOTED_FIELD.fullmatch(field)
    return match.group(1).replace('""', '"') if match else field


def _tsv_records(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    """One record per line, split on tabs; a field wrapped in double quotes is unquoted ("" becomes ")."""
    for lineno, line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            yield lineno, [_unquote(field) for field in line.split("\t")]


class _LineFeed:
    """Feeds decoded lines to csv.reader and remembers where the current record started."""

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self.first = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        lineno, text = next(self._lines)
        if not self.first:
            self.first = lineno
        return text


def _csv_records(lines: Iterator[tuple[int, str]], errors: _Collector) -> Iterator[tuple[int, list[str]]]:
    feed = _LineFeed(lines)
    reader = csv.reader(feed, strict=True)
    while True:
        feed.first = 0
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            errors.add(feed.first or 1, f"CSV syntax error ({err}); stopped reading here")
            return
        if any(field.strip() for field in fields):
            yield feed.first, fields


def _with_header(
    records: Iterator[tuple[int, list[str]]],
    errors: _Collector,
    required: Sequence[str],
) -> Iterator[tuple[int, Row]]:
    """Read the header record, check the required columns and yield each row as a dict by column name."""
    try:
        header_line, header = next(records)
    except StopIteration:
        return
    names = [name.strip().lower() for name in header]
    missing = [column for column in required if column not in names]
    if missing:
        found = ", ".join(repr(name) for name in names)
        wanted = ", ".join(repr(column) for column in missing)
        raise errors.fatal(header_line, f"header is missing column(s) {wanted} (found: {found})")
    for lineno, fields in records:
        if len(fields) != len(names):
            errors.add(lineno, f"expected {len(names)} columns, found {len(fields)}")
            continue
        yield lineno, dict(zip(names, fields, strict=True))


def _json_rows(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, object]]:
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            yield lineno, _RowError(f"invalid JSON ({err.msg} at column {err.colno})")


# --------------------------------------------------------------------------------------------------- row parsers


def _generic_row(source: str) -> RowParser:
    def parse(row: Row) -> Example:
        return Example(
            text=_text(row["text"]),
            label=_label(row["label"]),
            lang=_optional(row.get("lang"), "lang"),
            source=_optional(row.get("source"), "source") or source,
        )

    return parse


def _seed_row(row: Row) -> Example:
    lang = _optional(row["lang"], "lang")
    if lang is None:
        raise _RowError("empty lang")
    return Example(text=_text(row["text"]), label=_label(row["label"]), lang=lang, source="seed")


def _beep_row(row: Row) -> Example:
    text = _text(row["comments"], "comments")
    hate = row["hate"].strip().lower()
    if hate not in _BEEP_HATE:
        raise _RowError(f"hate {row['hate']!r} is not one of hate/offensive/none")
    return Example(text=text, label=_BEEP_HATE[hate], lang="ko", source="beep")


def _unsmile_row(row: Row) -> Example:
    text = _text(row["문장"], "문장")
    flags = {column: _binary_flag(row[column], column) for column in _UNSMILE_CATEGORIES if column in row}
    return Example(text=text, label=0 if flags["clean"] == 1 else 1, lang="ko", source="unsmile")


def _jigsaw_row(row: Row) -> Example:
    text = _text(row["comment_text"], "comment_text")
    if "target" in row or "toxicity" in row:
        column = "target" if "target" in row else "toxicity"
        score = _score(row[column], column)
        if not 0.0 <= score <= 1.0:
            raise _RowError(f"{column} {row[column]!r} is outside 0..1")
        return Example(text=text, label=int(score >= 0.5), lang="en", source="jigsaw")
    scores = [_score(row[column], column) for column in _JIGSAW_COLUMNS]
    if any(score < 0 for score in scores):
        raise _RowError("unscored row (labels are -1, as in the Jigsaw test set)")
    return Example(text=text, label=int(any(score >= 0.5 for score in scores)), lang="en", source="jigsaw")


def _jigsaw_required(header: Sequence[str]) -> tuple[str, ...]:
    names = {name.strip().lower() for name in header}
    if "target" in names or "toxicity" in names:
        return ("comment_text",)
    return ("comment_text", *_JIGSAW_COLUMNS)


def _json_example(value: object, source: str) -> Example:
    if isinstance(value, _RowError):
        raise value
    if not isinstance(value, dict):
        raise _RowError(f"expected a JSON object, got {type(value).__name__}")
    if "text" not in value:
        raise _RowError("missing key 'text'")
    if "label" not in value:
        raise _RowError("missing key 'label'")
    return Example(
        text=_text(value["text"]),
        label=_label(value["label"]),
        lang=_optional(value.get("lang"), "lang"),
        source=_optional(value.get("source"), "source") or source,
    )


# --------------------------------------------------------------------------------------------------- public API


def load_examples(
    path: str | os.PathLike[str],
    format: str,
    *,
    on_error: str = "raise",
    limit: int | None = None,
    max_errors: int = 20,
) -> list[Example]:
    """Load labelled examples from ``path`` in one of :data:`FORMATS`.

    Returns a :class:`LoadedExamples` (a list) whose ``warnings`` name every row skipped with
    ``on_error="skip"``. ``limit`` stops after that many valid examples.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; known formats: {', '.join(FORMATS)}")
    if on_error not in ON_ERROR_MODES:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_MODES)}, got {on_error!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples or None, got {limit!r}")
    if max_errors < 1:
        raise ValueError(f"max_errors must be at least 1, got {max_errors!r}")
    file = Path(path)
    shown = os.fspath(path)
    if not file.is_file():
        raise FileNotFoundError(f"data file not found: {shown}")
    errors = _Collector(shown, on_error, max_errors)
    data = file.read_bytes()
    if not data.strip():
        raise DataError(f"{shown}:1: no examples (the file is empty)", path=shown)
    rows = _parsed_rows(data, format, file.name, errors)
    examples: list[Example] = []
    for lineno, parse in rows:
        try:
            examples.append(parse())
        except _RowError as err:
            errors.add(lineno, str(err))
            continue
        if limit is not None and len(examples) >= limit:
            break
    errors.raise_if_needed()
    if not examples:
        detail = (
            f"; {errors.count} malformed row(s) skipped, first: {errors.messages[0]}" if errors.count else ""
        )
        raise DataError(
            f"{shown}: no examples (no valid data rows){detail}", path=shown, errors=errors.messages
        )
    if errors.count:
        log.warning("%s: skipped %d malformed row(s)", shown, errors.count)
    return LoadedExamples(examples, path=shown, warnings=errors.messages)


def _parsed_rows(
    data: bytes, format: str, file_name: str, errors: _Collector
) -> Iterator[tuple[int, Callable[[], Example]]]:
    """Yield (line number, thunk building the Example) so row errors surface inside the caller's loop."""
    lines = _decoded_lines(data, errors, header=format != "jsonl")
    if format == "jsonl":
        for lineno, value in _json_rows(lines):
            yield lineno, lambda value=value: _json_example(value, file_name)
        return
    records = _csv_records(lines, errors) if format in ("csv", "jigsaw") else _tsv_records(lines)
    parser: RowParser
    if format == "jigsaw":
        first = next(records, None)
        if first is None:
            return
        required: Sequence[str] = _jigsaw_required(first[1])
        records = _chain(first, records)
        parser = _jigsaw_row
    elif format == "beep":
        required, parser = ("comments", "hate"), _beep_row
    elif format == "unsmile":
        required, parser = ("문장", "clean"), _unsmile_row
    elif format == "seed":
        required, parser = ("text", "label", "lang"), _seed_row
    else:
        required, parser = ("text", "label"), _generic_row(file_name)
    for lineno, row in _with_header(records, errors, required):
        yield lineno, lambda row=row: parser(row)


def _chain(
    first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


@lru_cache(maxsize=1)
def _seed_corpus() -> tuple[Example, ...]:
    resource = resources.files(__package__).joinpath(SEED_CORPUS_FILE)
    with resources.as_file(resource) as path:
        return tuple(load_examples(path, "seed"))


def load_seed_corpus(lang: str | None = None) -> list[Example]:
    """The labelled seed corpus shipped with the package, optionally only one language ("ko" or "en")."""
    examples = _seed_corpus()
    if lang is None:
        return list(examples)
    chosen = [example for example in examples if example.lang == lang]
    if not chosen:
        known = sorted({example.lang for example in examples if example.lang})
        raise ValueError(f"no seed examples for lang {lang!r}; available: {', '.join(known)}")
    return chosen


def split_examples(
    examples: Sequence[Example],
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[list[Example], list[Example]]:
    """Deterministic train/test split; with ``stratify`` each label keeps its share in both parts.

    Both parts keep the input order. Every stratum of two or more examples puts at least one in each part.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    strata: dict[int, list[int]] = {}
    for index, example in enumerate(examples):
        strata.setdefault(example.label if stratify else 0, []).append(index)
    rng = random.Random(seed)
    test_indices: set[int] = set()
    for key in sorted(strata):
        indices = strata[key]
        rng.shuffle(indices)
        test_indices.update(indices[: _test_count(len(indices), test_fraction)])
    train = [example for index, example in enumerate(examples) if index not in test_indices]
    test = [example for index, example in enumerate(examples) if index in test_indices]
    return train, test


def _test_count(size: int, fraction: float) -> int:
    if size < 2:
        return 0
    return min(max(round(size * fraction), 1), size - 1)
