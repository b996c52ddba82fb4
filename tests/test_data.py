"""Loaders, the shipped seed corpus and its generator, and the train/test split."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from content_arena.data import (
    FORMATS,
    DataError,
    Example,
    load_examples,
    load_seed_corpus,
    parse_label,
    split_examples,
)

ROOT = Path(__file__).resolve().parents[1]
SEED_FILE = ROOT / "src" / "content_arena" / "data" / "seed_corpus.tsv"
GENERATOR = ROOT / "tools" / "make_seed_corpus.py"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def data_error(path: Path, fmt: str, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_examples(path, fmt, **kwargs)
    return info.value


# ------------------------------------------------------------------------------------------------ basics


def test_formats_are_listed() -> None:
    assert FORMATS == ("beep", "unsmile", "jigsaw", "csv", "tsv", "jsonl", "seed")


def test_example_is_frozen_and_checks_label() -> None:
    example = Example("안녕하세요", 0, "ko")
    assert example.source is None
    with pytest.raises(AttributeError):
        example.label = 1  # type: ignore[misc]
    for bad in (2, -1, True, "1"):
        with pytest.raises(ValueError):
            Example("x", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("0", 0),
        (" TRUE ", 1),
        ("false", 0),
        ("Toxic", 1),
        ("clean", 0),
        ("yes", 1),
        ("No", 0),
        (1, 1),
        (0, 0),
        (True, 1),
        (False, 0),
        (1.0, 1),
        ("0.0", 0),
    ],
)
def test_parse_label_accepts_the_documented_words(value: object, expected: int) -> None:
    assert parse_label(value) == expected


@pytest.mark.parametrize("value", ["maybe", "2", "", None, 0.5, [1]])
def test_parse_label_rejects_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="is not one of 0/1/true/false/toxic/clean"):
        parse_label(value)


def test_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "text,label\nhi,0\n")
    with pytest.raises(ValueError, match="known formats: beep, unsmile, jigsaw, csv, tsv, jsonl, seed"):
        load_examples(path, "parquet")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "gone.tsv"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_examples(missing, "tsv")


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "text,label\nhi,0\n")
    with pytest.raises(ValueError, match="on_error"):
        load_examples(path, "csv", on_error="ignore")
    with pytest.raises(ValueError, match="limit"):
        load_examples(path, "csv", limit=0)


# ------------------------------------------------------------------------------------------------ csv / tsv


def test_csv_reads_labels_bom_crlf_and_quoted_newlines(tmp_path: Path) -> None:
    content = (
        "\ufefftext,label,lang\r\n"
        "  좋은 영상 감사합니다  ,0,ko\r\n"
        '"multi\r\nline, with comma",toxic,en\r\n'
        "\r\n"
        "you idiot,yes,en\r\n"
        "fine,false,\r\n"
    )
    path = write(tmp_path, "comments.csv", content)
    examples = load_examples(path, "csv")
    assert [e.label for e in examples] == [0, 1, 1, 0]
    assert examples[0] == Example("좋은 영상 감사합니다", 0, "ko", "comments.csv")
    assert examples[1].text == "multi\r\nline, with comma"
    assert examples[3].lang is None
    assert examples.warnings == []  # type: ignore[attr-defined]


def test_csv_reports_each_bad_row_with_file_and_line(tmp_path: Path) -> None:
    content = (
        "text,label\n"  # 1
        "ok,1\n"  # 2
        "hmm,maybe\n"  # 3
        '"spans\ntwo lines",0\n'  # 4-5
        "   ,1\n"  # 6
        "too,many,columns\n"  # 7
        "fine,0\n"  # 8
    )
    path = write(tmp_path, "x.csv", content)
    error = data_error(path, "csv")
    message = str(error)
    assert f"{path}: 3 malformed rows" in message
    assert f"{path}:3: label 'maybe' is not one of 0/1/true/false/toxic/clean/yes/no" in message
    assert f"{path}:6: empty text" in message
    assert f"{path}:7: expected 2 columns, found 3" in message
    assert error.count == 3 and len(error.errors) == 3
    assert isinstance(error, ValueError)


def test_csv_single_error_message_is_just_that_row(tmp_path: Path) -> None:
    path = write(tmp_path, "one.csv", "text,label\nok,1\nbad,7\n")
    assert (
        str(data_error(path, "csv")) == f"{path}:3: label '7' is not one of 0/1/true/false/toxic/clean/yes/no"
    )


def test_csv_unterminated_quote_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'text,label\nok,1\n"never closed,0\nmore,1\n')
    message = str(data_error(path, "csv"))
    assert f"{path}:3: CSV syntax error" in message


def test_header_without_required_column_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "comment,toxic\nhi,1\n")
    message = str(data_error(path, "csv"))
    assert message.startswith(f"{path}:1: header is missing column(s) 'text', 'label'")
    assert "found: 'comment', 'toxic'" in message


def test_tsv_reads_lang_and_source_and_quoted_fields(tmp_path: Path) -> None:
    content = 'text\tlabel\tlang\tsource\n"he said ""hi"""\t0\ten\tforum\n닥쳐\t1\tko\t\n'
    examples = load_examples(write(tmp_path, "x.tsv", content), "tsv")
    assert examples == [Example('he said "hi"', 0, "en", "forum"), Example("닥쳐", 1, "ko", "x.tsv")]


def test_tsv_reports_bad_rows(tmp_path: Path) -> None:
    content = "text\tlabel\nok\t1\nno label here\nempty label\t\n\t0\n"
    path = write(tmp_path, "bad.tsv", content)
    message = str(data_error(path, "tsv"))
    assert f"{path}:3: expected 2 columns, found 1" in message
    assert f"{path}:4: label '' is not one of" in message
    assert f"{path}:5: empty text" in message


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    content = b"text\tlabel\nok\t1\n" + "욕설\t1\n".encode("cp949") + b"fine\t0\n"
    path = write(tmp_path, "cp949.tsv", content)
    message = str(data_error(path, "tsv"))
    assert f"{path}:3: not valid UTF-8" in message
    examples = load_examples(path, "tsv", on_error="skip")
    assert [e.text for e in examples] == ["ok", "fine"]


def test_undecodable_header_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"\xfftext,label\nhi,1\n")
    assert str(data_error(path, "csv")) == f"{path}:1: header line is not valid UTF-8 (byte 0xff at column 1)"


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "u16.csv", "text,label\nhi,0\n".encode("utf-16"))
    assert "UTF-16" in str(data_error(path, "csv"))


@pytest.mark.parametrize("content", ["", "   \n\n", "text,label\n", "\ufefftext,label\r\n\r\n"])
def test_empty_file_or_header_only_has_no_examples(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, "empty.csv", content)
    message = str(data_error(path, "csv"))
    assert str(path) in message and "no examples" in message


def test_errors_are_capped_but_counted(tmp_path: Path) -> None:
    rows = "".join(f"row {i},maybe\n" for i in range(25))
    path = write(tmp_path, "many.csv", "text,label\nok,1\n" + rows)
    error = data_error(path, "csv")
    assert f"{path}: 25 malformed rows (first 20 shown)" in str(error)
    assert error.count == 25 and len(error.errors) == 20
    assert error.errors[0].startswith(f"{path}:3: ")
    error = data_error(path, "csv", max_errors=5)
    assert len(error.errors) == 5 and "(first 5 shown)" in str(error)


def test_skip_mode_keeps_good_rows_and_lists_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.csv", "text,label\nok,1\nbad,maybe\n,0\nfine,clean\n")
    examples = load_examples(path, "csv", on_error="skip")
    assert [(e.text, e.label) for e in examples] == [("ok", 1), ("fine", 0)]
    warnings = examples.warnings  # type: ignore[attr-defined]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{path}:3: label 'maybe'")
    assert warnings[1] == f"{path}:4: empty text"


def test_skip_mode_with_no_valid_rows_still_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "allbad.csv", "text,label\na,x\nb,y\n")
    message = str(data_error(path, "csv", on_error="skip"))
    assert "no examples" in message and f"{path}:2:" in message


def test_limit_stops_early(tmp_path: Path) -> None:
    path = write(
        tmp_path, "l.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(50)) + "bad,x\n"
    )
    assert [e.text for e in load_examples(path, "csv", limit=3)] == ["t0", "t1", "t2"]


# ------------------------------------------------------------------------------------------------ jsonl


def test_jsonl_good_rows(tmp_path: Path) -> None:
    lines = [
        {"text": "꺼져", "label": 1, "lang": "ko"},
        {"text": " nice ", "label": "clean", "source": "forum"},
        {"text": "x", "label": True, "extra": [1, 2]},
    ]
    content = "\ufeff" + "\r\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\r\n\r\n"
    examples = load_examples(write(tmp_path, "a.jsonl", content), "jsonl")
    assert examples == [
        Example("꺼져", 1, "ko", "a.jsonl"),
        Example("nice", 0, None, "forum"),
        Example("x", 1, None, "a.jsonl"),
    ]


def test_jsonl_bad_rows(tmp_path: Path) -> None:
    content = "\n".join(
        [
            '{"text": "ok", "label": 0}',  # 1
            '{"text": "broken", "label": ',  # 2
            '["not", "an", "object"]',  # 3
            '{"text": "no label"}',  # 4
            '{"label": 1}',  # 5
            '{"text": "", "label": 1}',  # 6
            '{"text": 5, "label": 1}',  # 7
            '{"text": "hmm", "label": "maybe"}',  # 8
        ]
    )
    path = write(tmp_path, "b.jsonl", content)
    message = str(data_error(path, "jsonl"))
    assert f"{path}: 7 malformed rows" in message
    assert f"{path}:2: invalid JSON" in message
    assert f"{path}:3: expected a JSON object, got list" in message
    assert f"{path}:4: missing key 'label'" in message
    assert f"{path}:5: missing key 'text'" in message
    assert f"{path}:6: empty text" in message
    assert f"{path}:7: text must be a string, got int" in message
    assert f"{path}:8: label 'maybe' is not one of" in message


# ------------------------------------------------------------------------------------------------ beep


BEEP_HEADER = "comments\tcontain_gender_bias\tbias\thate\n"


def test_beep_maps_hate_and_offensive_to_toxic(tmp_path: Path) -> None:
    content = (
        BEEP_HEADER
        + "이 영화 진짜 재밌다\tFalse\tnone\tnone\n"
        + '"노래 ""형""이 좋아요"\tFalse\tnone\tnone\n'
        + "저런 놈은 감옥 가야지\tFalse\tothers\toffensive\n"
        + "여자가 무슨\tTrue\tgender\thate\n"
    )
    examples = load_examples(write(tmp_path, "train.tsv", content), "beep")
    assert [e.label for e in examples] == [0, 0, 1, 1]
    assert examples[1].text == '노래 "형"이 좋아요'
    assert {e.lang for e in examples} == {"ko"} and {e.source for e in examples} == {"beep"}


def test_beep_bad_rows(tmp_path: Path) -> None:
    content = (
        BEEP_HEADER + "ok\tFalse\tnone\tnone\nweird\tFalse\tnone\tmaybe\nshort\tFalse\n\tFalse\tnone\thate\n"
    )
    path = write(tmp_path, "beep.tsv", content)
    message = str(data_error(path, "beep"))
    assert f"{path}:3: hate 'maybe' is not one of hate/offensive/none" in message
    assert f"{path}:4: expected 4 columns, found 2" in message
    assert f"{path}:5: empty comments" in message


def test_beep_header_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "beep.tsv", "text\tlabel\nhi\t0\n")
    assert f"{path}:1: header is missing column(s) 'comments', 'hate'" in str(data_error(path, "beep"))


def _shared_beep() -> Path | None:
    candidates = [
        ROOT / "shared" / "data" / "beep" / "train.tsv",
        ROOT.parent / "shared" / "data" / "beep" / "train.tsv",
    ]
    if os.environ.get("ARENA_SHARED_DATA"):
        candidates.insert(0, Path(os.environ["ARENA_SHARED_DATA"]) / "beep" / "train.tsv")
    return next((path for path in candidates if path.is_file()), None)


@pytest.mark.shared_data
def test_real_beep_training_split() -> None:
    path = _shared_beep()
    if path is None:
        pytest.skip(
            "BEEP! train.tsv not found under shared/data/beep or ../shared/data/beep (set ARENA_SHARED_DATA)"
        )
    examples = load_examples(path, "beep")
    assert len(examples) == 7896
    assert examples.warnings == []  # type: ignore[attr-defined]
    share = sum(e.label for e in examples) / len(examples)
    assert share == pytest.approx(0.559, abs=0.001)
    # the seed corpus is written for the project: no line of it is copied from BEEP!
    beep_texts = {e.text for e in examples}
    assert [e.text for e in load_seed_corpus("ko") if e.text in beep_texts] == []


# ------------------------------------------------------------------------------------------------ unsmile


UNSMILE_HEADER = (
    "문장\t여성/가족\t남성\t성소수자\t인종/국적\t연령\t지역\t종교\t기타 혐오\t악플/욕설\tclean\t개인지칭\n"
)


def test_unsmile_label_is_not_clean(tmp_path: Path) -> None:
    content = (
        UNSMILE_HEADER
        + "날씨 좋다\t0\t0\t0\t0\t0\t0\t0\t0\t0\t1\t0\n"
        + "욕 나오네 진짜\t0\t0\t0\t0\t0\t0\t0\t0\t1\t0\t0\n"
        + "어떤 집단 비하\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\n"
        + "그 사람 말이야\t0\t0\t0\t0\t0\t0\t0\t0\t0\t1\t1\n"
    )
    examples = load_examples(write(tmp_path, "unsmile_train_v1.0.tsv", content), "unsmile")
    assert [e.label for e in examples] == [0, 1, 1, 0]
    assert {e.source for e in examples} == {"unsmile"}


def test_unsmile_bad_rows(tmp_path: Path) -> None:
    content = (
        UNSMILE_HEADER + "좋아요\t0\t0\t0\t0\t0\t0\t0\t0\t0\t2\t0\n" + "음\t0\t0\t0\t0\t0\t0\t0\t0\tx\t0\t0\n"
    )
    path = write(tmp_path, "u.tsv", content)
    message = str(data_error(path, "unsmile"))
    assert f"{path}:2: clean '2' is not 0 or 1" in message
    assert f"{path}:3: 악플/욕설 'x' is not 0 or 1" in message


def test_unsmile_needs_clean_column(tmp_path: Path) -> None:
    path = write(tmp_path, "u.tsv", "문장\t악플/욕설\n뭐\t1\n")
    assert f"{path}:1: header is missing column(s) 'clean'" in str(data_error(path, "unsmile"))


# ------------------------------------------------------------------------------------------------ jigsaw


JIGSAW_HEADER = "id,comment_text,toxic,severe_toxic,obscene,threat,insult,identity_hate\n"


def test_jigsaw_any_column_at_least_half_is_toxic(tmp_path: Path) -> None:
    content = (
        JIGSAW_HEADER
        + 'a1,"Thanks for the edit,\nlooks good",0,0,0,0,0,0\n'
        + "a2,you are an idiot,0,0,0,0,1,0\n"
        + "a3,borderline,0.4,0,0,0,0,0.49\n"
        + "a4,i will find you,0,0,0,0.5,0,0\n"
    )
    examples = load_examples(write(tmp_path, "train.csv", content), "jigsaw")
    assert [e.label for e in examples] == [0, 1, 0, 1]
    assert examples[0].text == "Thanks for the edit,\nlooks good"
    assert {e.lang for e in examples} == {"en"}


def test_jigsaw_bad_rows(tmp_path: Path) -> None:
    content = (
        JIGSAW_HEADER
        + "b1,fine,0,0,0,0,0,0\n"  # 2
        + "b2,unscored,-1,-1,-1,-1,-1,-1\n"  # 3
        + "b3,oops,zero,0,0,0,0,0\n"  # 4
        + "b4,,1,0,0,0,0,0\n"  # 5
        + 'b5,"two\nlines",0,0,0,0,0,nan\n'  # 6-7
        + "b6,short,0\n"  # 8
    )
    path = write(tmp_path, "j.csv", content)
    message = str(data_error(path, "jigsaw"))
    assert f"{path}:3: unscored row" in message
    assert f"{path}:4: toxic 'zero' is not a number" in message
    assert f"{path}:5: empty comment_text" in message
    assert f"{path}:6: identity_hate 'nan' is not a finite number" in message
    assert f"{path}:8: expected 8 columns, found 3" in message


def test_jigsaw_unintended_bias_variant(tmp_path: Path) -> None:
    content = (
        "id,target,comment_text,severe_toxicity,obscene\n1,0.6,get lost loser,0.1,0.2\n2,0.2,ok then,0,0\n"
    )
    examples = load_examples(write(tmp_path, "bias.csv", content), "jigsaw")
    assert [e.label for e in examples] == [1, 0]
    path = write(tmp_path, "bias_bad.csv", "id,target,comment_text\n1,1.5,hmm\n")
    assert f"{path}:2: target '1.5' is outside 0..1" in str(data_error(path, "jigsaw"))


def test_jigsaw_header_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "j.csv", "id,comment_text,toxic\n1,hi,0\n")
    assert f"{path}:1: header is missing column(s) 'severe_toxic'" in str(data_error(path, "jigsaw"))


# ------------------------------------------------------------------------------------------------ seed format


def test_seed_format_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "s.tsv", "text\tlabel\tlang\n안녕\t0\tko\nyo\t1\t\n")
    assert f"{path}:3: empty lang" in str(data_error(path, "seed"))
    examples = load_examples(path, "seed", on_error="skip")
    assert examples == [Example("안녕", 0, "ko", "seed")]


# ------------------------------------------------------------------------------------------------ seed corpus


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_seed_corpus", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_regenerates_the_committed_corpus_byte_for_byte() -> None:
    generator = load_generator()
    assert generator.render().encode("utf-8") == SEED_FILE.read_bytes()


def test_seed_corpus_size_languages_and_balance() -> None:
    corpus = load_seed_corpus()
    assert len(corpus) >= 1600
    by_lang = Counter(e.lang for e in corpus)
    assert set(by_lang) == {"ko", "en"}
    assert 0.65 <= by_lang["ko"] / len(corpus) <= 0.75
    for lang, count in by_lang.items():
        toxic = sum(e.label for e in corpus if e.lang == lang)
        assert 0.4 <= toxic / count <= 0.6, lang
    assert all(e.source == "seed" for e in corpus)


def test_seed_corpus_lines_are_unique_and_well_formed() -> None:
    corpus = load_seed_corpus()
    texts = [e.text for e in corpus]
    assert len(set(texts)) == len(texts)
    assert all(3 <= len(text) <= 120 for text in texts)
    raw = SEED_FILE.read_text(encoding="utf-8")
    assert raw.startswith("text\tlabel\tlang\n") and "\r" not in raw and raw.endswith("\n")
    assert raw.count("\n") == len(corpus) + 1


def test_seed_corpus_has_profanity_and_look_alikes() -> None:
    corpus = load_seed_corpus()
    toxic = " ".join(e.text for e in corpus if e.label == 1)
    clean = [e.text for e in corpus if e.label == 0]
    for word in [
        "씨발",
        "시발",
        "병신",
        "개새끼",
        "좆",
        "꺼져",
        "미친놈",
        "닥쳐",
        "지랄",
        "엠창",
        "썅",
        "호로",
        "쓰레기",
        "한남",
        "김치녀",
        "fuck",
        "idiot",
    ]:
        assert word in toxic, word
    for word in ["시발점", "18세", "개나리", "수박씨", "Scunthorpe", "assessment", "cocktail"]:
        assert any(word.lower() in text.lower() for text in clean), word


def test_no_template_dominates_the_seed_corpus() -> None:
    generator = load_generator()
    counts = generator.template_counts()
    assert sum(slots + literal for slots, literal in counts.values()) >= 600
    corpus = load_seed_corpus("ko")
    starts = Counter(e.text.split()[0] for e in corpus if " " in e.text)
    assert starts.most_common(1)[0][1] / len(corpus) < 0.05


def test_load_seed_corpus_filters_by_language() -> None:
    korean = load_seed_corpus("ko")
    english = load_seed_corpus("en")
    assert {e.lang for e in korean} == {"ko"} and {e.lang for e in english} == {"en"}
    assert len(korean) + len(english) == len(load_seed_corpus())
    with pytest.raises(ValueError, match="available: en, ko"):
        load_seed_corpus("ja")


# ------------------------------------------------------------------------------------------------ split


def labelled(n_toxic: int, n_clean: int) -> list[Example]:
    return [Example(f"t{i}", 1) for i in range(n_toxic)] + [Example(f"c{i}", 0) for i in range(n_clean)]


def test_split_is_deterministic_disjoint_and_complete() -> None:
    examples = labelled(70, 130)
    train, test = split_examples(examples, test_fraction=0.25, seed=3)
    assert split_examples(examples, test_fraction=0.25, seed=3) == (train, test)
    assert split_examples(examples, test_fraction=0.25, seed=4) != (train, test)
    assert sorted(e.text for e in train + test) == sorted(e.text for e in examples)
    assert not {e.text for e in train} & {e.text for e in test}
    assert [e for e in examples if e in train] == train  # input order is kept


def test_split_is_stratified_by_label() -> None:
    examples = labelled(70, 130)
    _, test = split_examples(examples, test_fraction=0.2)
    assert sum(e.label for e in test) == 14
    assert len(test) - sum(e.label for e in test) == 26


def test_split_without_stratify_and_with_tiny_strata() -> None:
    examples = labelled(3, 97)
    train, test = split_examples(examples, test_fraction=0.1, stratify=False, seed=1)
    assert len(test) == 10 and len(train) == 90
    train, test = split_examples(labelled(2, 1), test_fraction=0.2)
    assert sum(e.label for e in test) == 1 and sum(e.label for e in train) == 1
    assert [e.label for e in train].count(0) == 1


def test_split_rejects_bad_fraction() -> None:
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            split_examples(labelled(5, 5), test_fraction=fraction)


def test_split_of_the_seed_corpus_keeps_balance() -> None:
    corpus = load_seed_corpus()
    train, test = split_examples(corpus, test_fraction=0.2, seed=0)
    share = sum(e.label for e in corpus) / len(corpus)
    assert sum(e.label for e in test) / len(test) == pytest.approx(share, abs=0.01)
    assert len(test) == pytest.approx(0.2 * len(corpus), abs=2)
