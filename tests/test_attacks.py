from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_arena.attacks import (
    RULE_STRATEGIES,
    Composite,
    LLMParaphrase,
    Strategy,
    StrategyUnavailable,
    UnknownStrategyError,
    available_strategies,
    get_strategy,
    register,
    resolve_strategies,
)
from content_arena.attacks import registry as registry_module
from content_arena.attacks.homoglyph import LATIN_LOOKALIKES
from content_arena.attacks.jamo import JamoSplit, NFDJamo
from content_arena.attacks.leet import syllable_respellings
from content_arena.attacks.llm import NO_HOST_MESSAGE, clean_model_output, rejection_reason
from content_arena.attacks.simple import INVISIBLE_INSERTS, SEPARATORS
from content_arena.defender.normalizer import normalize

KOREAN = ["이 씨발 개새끼야 꺼져", "병신 같은 새끼 ㅋㅋ", "미친놈아 닥쳐", "존나 못생겼네", "시발놈아 죽어라"]
ENGLISH = ["you are a fucking idiot", "Shut up, you stupid bitch", "go kill yourself loser", "what a dumb asshole"]
MIXED = ["시발 fuck you", "ㅅㅂ 진짜 stupid 새끼"]
UNICODE_TRICKS = ("jamo_split", "nfd", "homoglyph", "invisible")
# Strategies that only touch Hangul (or precomposed accents) leave plain English alone.
HANGUL_ONLY = {"jamo_split", "nfd"}
# Registered after the six rules and "llm", in this order (see tests/test_attacks_families.py).
FAMILIES = [
    "ko_consonant", "ko_vowel", "ko_pronounce", "ko_shape", "ko_roman", "ko_keyboard", "ko_chosung", "repeat",
    "symbol", "filler", "typo_swap", "typo_delete", "typo_insert", "typo_keyboard", "en_typo", "en_leet",
    "en_hangul", "ko_level2", "ko_level3", "ko_level4", "en_level2", "en_level3", "en_level4", "adaptive",
]


# --------------------------------------------------------------------------- registry


def test_rule_strategy_names_and_availability() -> None:
    assert RULE_STRATEGIES == ("jamo_split", "nfd", "homoglyph", "invisible", "spacing", "leet_phonetic")
    assert available_strategies() == [*RULE_STRATEGIES, "llm", *FAMILIES]
    for name in RULE_STRATEGIES:
        strategy = get_strategy(name)
        assert isinstance(strategy, Strategy)
        assert strategy.name == name
        assert strategy.description


def test_composite_by_name_applies_parts_in_order_with_the_same_seed() -> None:
    composite = get_strategy("jamo_split+spacing")
    assert isinstance(composite, Composite)
    assert composite.name == "jamo_split+spacing"
    assert [part.name for part in composite.strategies] == ["jamo_split", "spacing"]
    split, spacing = get_strategy("jamo_split"), get_strategy("spacing")
    for text in KOREAN + ENGLISH:
        for seed in range(5):
            assert composite.attack(text, seed) == spacing.attack(split.attack(text, seed), seed)
    assert get_strategy(" nfd + invisible ").name == "nfd+invisible"
    assert Composite([get_strategy("nfd"), get_strategy("homoglyph")]).name == "nfd+homoglyph"


def test_unknown_strategy_error_names_the_bad_one_and_lists_known_ones() -> None:
    with pytest.raises(UnknownStrategyError) as caught:
        get_strategy("jamo_splat")
    message = str(caught.value)
    assert "unknown strategy 'jamo_splat'" in message
    for name in (*RULE_STRATEGIES, "llm"):
        assert name in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownStrategyError, match="nope"):
        get_strategy("nfd+nope")
    with pytest.raises(UnknownStrategyError):
        get_strategy("nfd+")
    with pytest.raises(UnknownStrategyError, match="bogus"):
        resolve_strategies("nfd,bogus")


def test_resolve_strategies_specs() -> None:
    assert [s.name for s in resolve_strategies("all")] == list(RULE_STRATEGIES)
    assert [s.name for s in resolve_strategies(["all"], llm={"host": None})] == list(RULE_STRATEGIES)
    assert [s.name for s in resolve_strategies("nfd, spacing")] == ["nfd", "spacing"]
    assert [s.name for s in resolve_strategies(["nfd", "jamo_split+invisible", "nfd"])] == [
        "nfd",
        "jamo_split+invisible",
    ]
    with_llm = resolve_strategies("all", llm={"host": "http://127.0.0.1:9", "model": "tiny", "timeout": 1})
    assert [s.name for s in with_llm] == [*RULE_STRATEGIES, "llm"]
    assert isinstance(with_llm[-1], LLMParaphrase)
    assert with_llm[-1].model == "tiny"
    with pytest.raises(UnknownStrategyError):
        resolve_strategies("")


def test_llm_without_host_is_unavailable_and_skippable() -> None:
    with pytest.raises(StrategyUnavailable) as caught:
        get_strategy("llm")
    assert str(caught.value) == NO_HOST_MESSAGE
    assert isinstance(caught.value, RuntimeError)
    with pytest.raises(StrategyUnavailable):
        LLMParaphrase(host=None)
    with pytest.raises(StrategyUnavailable):
        resolve_strategies("nfd,llm", llm={"model": "llama3.2"})
    assert [s.name for s in resolve_strategies("nfd,llm", skip_unavailable=True)] == ["nfd"]


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = dict(registry_module._REGISTRY)
    yield
    registry_module._REGISTRY.clear()
    registry_module._REGISTRY.update(before)


def test_register_adds_a_strategy(clean_registry: None) -> None:
    @register
    class Shout(Strategy):
        name = "shout"
        description = "upper-case everything"

        def transform(self, text: str, rng: random.Random) -> str:
            return text.upper()

    assert available_strategies() == [*RULE_STRATEGIES, "llm", *FAMILIES, "shout"]
    assert get_strategy("shout").attack("idiot") == "IDIOT"
    assert get_strategy("shout+invisible").name == "shout+invisible"
    assert [s.name for s in resolve_strategies("all")] == list(RULE_STRATEGIES)

    class Impostor(Strategy):
        name = "shout"

        def transform(self, text: str, rng: random.Random) -> str:
            return text

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)

    class BadName(Strategy):
        name = "a+b"

        def transform(self, text: str, rng: random.Random) -> str:
            return text

    with pytest.raises(ValueError):
        register(BadName)


# --------------------------------------------------------------------------- behaviour of every rule


@pytest.mark.parametrize("name", RULE_STRATEGIES)
def test_variants_differ_and_are_deterministic(name: str) -> None:
    strategy = get_strategy(name)
    examples = KOREAN + MIXED + ([] if name in HANGUL_ONLY else ENGLISH)
    for text in examples:
        variants = [strategy.attack(text, seed) for seed in range(12)]
        assert all(variant != text for variant in variants), (text, variants)
        assert variants == [strategy.attack(text, seed) for seed in range(12)]
        if name != "nfd":  # full NFD has exactly one result
            assert len(set(variants)) > 1, (text, variants)
    assert strategy.attack_many(examples, seed=3) == [strategy.attack(text, 3) for text in examples]


@pytest.mark.parametrize("name", ["jamo_split", "nfd"])
def test_hangul_only_strategies_leave_english_alone(name: str) -> None:
    for text in ENGLISH:
        assert get_strategy(name).attack(text) == text


def test_partial_nfd_differs_between_seeds() -> None:
    strategy = NFDJamo(rate=0.5)
    variants = {strategy.attack("이 씨발 개새끼야 꺼져", seed) for seed in range(10)}
    assert len(variants) > 1


@pytest.mark.parametrize("name", [*RULE_STRATEGIES, "jamo_split+spacing", "homoglyph+leet_phonetic"])
def test_nothing_to_attack_returns_the_text(name: str) -> None:
    strategy = get_strategy(name)
    assert strategy.attack("") == ""
    assert strategy.attack("   ") == "   "
    assert strategy.attack_many([]) == []


def test_seeded_rng_does_not_depend_on_the_hash_seed() -> None:
    code = (
        "from content_arena.attacks import get_strategy;"
        "print(get_strategy('leet_phonetic+homoglyph+spacing').attack('이 씨발 개새끼야 you idiot', 7))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(result.stdout)
    assert outputs == {get_strategy("leet_phonetic+homoglyph+spacing").attack("이 씨발 개새끼야 you idiot", 7) + "\n"}


@pytest.mark.parametrize(
    "name", [*UNICODE_TRICKS, "jamo_split+invisible", "homoglyph+invisible", "nfd+invisible+homoglyph"]
)
def test_normalizer_undoes_unicode_tricks(name: str) -> None:
    strategy = get_strategy(name)
    for text in KOREAN + ENGLISH + MIXED + ["Ａ ｂ 1８ 가나다", "ㅋㅋ 바보 ㅋㅋ"]:
        for seed in range(20):
            variant = strategy.attack(text, seed)
            assert normalize(variant) == normalize(text), (text, variant)


def test_jamo_split_modes() -> None:
    assert JamoSplit(mode="full").attack("씨발") == "ㅆㅣㅂㅏㄹ"
    partial = {JamoSplit(mode="partial").attack("씨발", seed) for seed in range(20)}
    assert partial <= {"ㅆㅣ발", "씨ㅂㅏㄹ", "ㅆㅣㅂㅏㄹ"}
    assert "ㅆㅣ발" in partial and "씨ㅂㅏㄹ" in partial
    auto = {get_strategy("jamo_split").attack("이 씨발 개새끼야", seed) for seed in range(20)}
    assert "ㅇㅣ ㅆㅣㅂㅏㄹ ㄱㅐㅅㅐㄲㅣㅇㅑ" in auto and len(auto) > 2
    with pytest.raises(ValueError):
        JamoSplit(mode="half")
    with pytest.raises(ValueError):
        JamoSplit(rate=0)


def test_invisible_only_inserts_invisible_characters() -> None:
    strategy = get_strategy("invisible")
    for text in KOREAN + ENGLISH:
        variant = strategy.attack(text, 1)
        assert "".join(c for c in variant if c not in INVISIBLE_INSERTS) == text
        assert len(variant) > len(text)


def test_spacing_only_inserts_one_kind_of_separator() -> None:
    strategy = get_strategy("spacing")
    seen = set()
    for text in KOREAN + ENGLISH:
        for seed in range(10):
            variant = strategy.attack(text, seed)
            assert variant != text
            assert any(variant.replace(sep, "") == text.replace(sep, "") for sep in SEPARATORS)
            seen.add(variant)
    assert len(seen) > 40


def test_spacing_keeps_spelled_out_syllables_together() -> None:
    strategy = get_strategy("spacing")
    for seed in range(30):
        variant = strategy.attack("ㅆㅣㅂㅏㄹ ㄴㅗㅁ", seed)
        for sep in SEPARATORS:
            for glued in ("ㅆㅣ", "ㅂㅏㄹ", "ㄴㅗㅁ"):
                assert glued[0] + sep + glued[1] not in variant


def test_homoglyph_uses_look_alikes_only() -> None:
    strategy = get_strategy("homoglyph")
    allowed = {c for options in LATIN_LOOKALIKES.values() for option in options for c in option}
    for text in ENGLISH:
        for seed in range(10):
            variant = strategy.attack(text, seed)
            assert len(variant) == len(text)
            for original, new in zip(text, variant, strict=True):
                assert new == original or new in allowed or ord(new) == ord(original) + 0xFEE0


def test_leet_phonetic_respellings() -> None:
    strategy = get_strategy("leet_phonetic")
    variants = {strategy.attack("시발", seed) for seed in range(60)}
    assert {"18", "시bal", "ㅅ1발", "C발", "씌발"} & variants
    english = {strategy.attack("fuck", seed) for seed in range(60)}
    assert english - {"fuck"}
    assert any(c in "".join(english) for c in "4@31!0$7") or english & {"phuck", "fvck", "fuk"}
    assert "씨" in syllable_respellings("시") and "ㅅ1" in syllable_respellings("시")
    assert "bal" in syllable_respellings("발") and "8" in syllable_respellings("팔")
    assert "7H" in syllable_respellings("개")
    assert "시" not in syllable_respellings("시")
    upper = {strategy.attack("FUCK YOU", seed) for seed in range(30)}
    assert all(v == v.upper() for v in upper)


arbitrary_text = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(arbitrary_text, st.integers(min_value=0, max_value=2**40))
def test_rule_strategies_never_raise(text: str, seed: int) -> None:
    for name in RULE_STRATEGIES:
        strategy = get_strategy(name)
        out = strategy.transform(text, random.Random(seed))  # transform itself must not raise either
        assert isinstance(out, str)
        assert isinstance(strategy.attack(text, seed), str)


# --------------------------------------------------------------------------- LLM paraphrase


class _FakeOllama(BaseHTTPRequestHandler):
    """Speaks just enough of Ollama's non-streaming /api/generate."""

    replies: ClassVar[list[Any]] = []
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        type(self).requests.append({"path": self.path, **body})
        reply = type(self).replies.pop(0) if type(self).replies else "unused"
        if isinstance(reply, int):
            self.send_response(reply)
            self.send_header("Content-Type", "application/json")
            payload = json.dumps({"error": "boom"}).encode()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            payload = json.dumps(
                {"model": body.get("model"), "created_at": "2024-01-01T00:00:00Z", "response": reply, "done": True}
            ).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # silence the test output
        pass


@pytest.fixture
def ollama_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _FakeOllama.replies = []
    _FakeOllama.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_llm_returns_the_paraphrase(ollama_host: str) -> None:
    _FakeOllama.replies = ["넌 진짜 ㅂㅅ 같음"]
    strategy = get_strategy("llm", llm={"host": ollama_host, "model": "tiny", "timeout": 5, "retries": 1})
    assert strategy.attack("넌 진짜 병신 같아", seed=3) == "넌 진짜 ㅂㅅ 같음"
    request = _FakeOllama.requests[0]
    assert request["path"] == "/api/generate"
    assert request["model"] == "tiny"
    assert request["stream"] is False
    assert "넌 진짜 병신 같아" in request["prompt"]
    assert request["options"]["temperature"] == pytest.approx(0.9)
    assert strategy.stats["accepted"] == 1 and strategy.stats["rejected"] == 0


def test_llm_cleans_wrapped_answers(ollama_host: str) -> None:
    _FakeOllama.replies = ['Here is the rewritten comment:\n"u r such a m0ron lol"']
    strategy = LLMParaphrase(host=ollama_host, timeout=5)
    assert strategy.attack("you are such a moron") == "u r such a m0ron lol"


def test_llm_rejects_refusals_then_keeps_the_original(ollama_host: str) -> None:
    _FakeOllama.replies = ["I can't help with that.", "죄송하지만 그런 요청은 도와드릴 수 없습니다.", "I'm sorry, no."]
    strategy = LLMParaphrase(host=ollama_host, timeout=5, retries=2)
    assert strategy.attack("you are a fucking idiot") == "you are a fucking idiot"
    assert len(_FakeOllama.requests) == 3
    assert strategy.stats["rejected"] == 1
    assert strategy.stats["refusal"] == 3
    assert strategy.stats["accepted"] == 0


def test_llm_retries_after_bad_output_and_errors(ollama_host: str) -> None:
    _FakeOllama.replies = [500, "you are a fucking idiot", "x" * 500, "", "ur a fkn idi0t"]
    strategy = LLMParaphrase(host=ollama_host, timeout=5, retries=4)
    assert strategy.attack("you are a fucking idiot") == "ur a fkn idi0t"
    assert strategy.stats["errors"] == 1
    assert strategy.stats["identical"] == 1
    assert strategy.stats["too_long"] == 1
    assert strategy.stats["empty"] == 1
    assert strategy.stats["accepted"] == 1
    # different attempts use different sampling seeds
    assert len({r["options"]["seed"] for r in _FakeOllama.requests}) == 5


def test_llm_unreachable_host_falls_back_to_the_original() -> None:
    strategy = LLMParaphrase(host="http://127.0.0.1:9", timeout=1, retries=1)
    assert strategy.attack("닥쳐 병신아") == "닥쳐 병신아"
    assert strategy.stats["errors"] == 2 and strategy.stats["rejected"] == 1


def test_llm_output_helpers() -> None:
    assert clean_model_output("<think>hmm</think>\nRewritten: 'ㅂㅅ아'") == "ㅂㅅ아"
    assert clean_model_output("```\nfvck u\n```") == "fvck u"
    assert clean_model_output("") == ""
    assert rejection_reason("abc", "abc ") == "identical"
    assert rejection_reason("abc", "As an AI, I cannot do that") == "refusal"
    assert rejection_reason("abc", "   ") == "empty"
    assert rejection_reason("abc", "y" * 60) == "too_long"
    assert rejection_reason("you idiot", "u idi0t") is None


def test_spacing_changes_text_made_of_spelled_out_syllables() -> None:
    strategy = get_strategy("spacing")
    for seed in range(20):
        assert strategy.attack("ㅂㅏㄹ 놈놈", seed) != "ㅂㅏㄹ 놈놈"


# Outputs of the six rule strategies as committed before the rule families were added: the loop's
# defaults depend on them, so they must not drift (same text, same seed, same variant).
GOLDEN = {
    'jamo_split': ('\u3147\u3163 \uc528\u3142\u314f\u3139 \u3131\u3150\uc0c8\ub07c\uc57c \uaebc\uc838', 'you are a fucking idiot'),
    'nfd': ('\u110b\u1175 \u110a\u1175\u1107\u1161\u11af \u1100\u1162\u1109\u1162\u1101\u1175\u110b\u1163 \u1101\u1165\u110c\u1167', 'you are a fucking idiot'),
    'homoglyph': ('\uc774 \uc528\ubc1c \uffa1\uffc3\uffb5\uffc3\uffa2\uffdc\uc57c \uaebc\uffb8\uffca', 'y\u043eu are \u03b1 \uff46uc\u03baing \uff49di\uff4f\uff54'),
    'invisible': ('\uc774 \uc528\ubc1c \uac1c\uc0c8\ufe0f\ub07c\u200c\uc57c \uaebc\uc838', 'yo\ufe0fu ar\u200be a f\u200du\ufeffcking i\u200bd\ufe00i\u200cot'),
    'spacing': ('\uc774 \uc528\ubc1c \uac1c \uc0c8 \ub07c \uc57c \uaebc\uc838', 'you are a fucking i d i o t'),
    'leet_phonetic': ('\uc774 \uc528\ubc1c \uce90\uc0c8\u3132l\uc57c \uaebc\uc84d', 'u are a effing idiot'),
}


@pytest.mark.parametrize("name", RULE_STRATEGIES)
def test_the_six_rules_are_unchanged(name: str) -> None:
    strategy = get_strategy(name)
    assert (strategy.attack("이 씨발 개새끼야 꺼져", 3), strategy.attack("you are a fucking idiot", 5)) == GOLDEN[name]


def test_new_families_compose_with_the_six_rules() -> None:
    composite = get_strategy("ko_consonant+invisible")
    for text in KOREAN:
        for seed in range(5):
            variant = composite.attack(text, seed)
            assert variant == get_strategy("invisible").attack(get_strategy("ko_consonant").attack(text, seed), seed)
            # the invisible part is undone by the normaliser, the sound change is not
            assert normalize(variant) == normalize(get_strategy("ko_consonant").attack(text, seed))
