"""Adaptive black-box attacker: query the defender's scores and keep the edits that lower them most.

The recipe (TextAttack's four parts):

* **goal**: the toxic score falls below the defender's threshold;
* **transformations**: the word-level rule families (:data:`DEFAULT_TRANSFORMATIONS`: Korean sound,
  shape, script and insertion edits; English typos, leetspeak and Hangul spelling). The unicode tricks
  the normaliser undoes (NFD, invisible characters, homoglyphs) are left out: they cannot move a
  normalising defender, so they would only burn queries;
* **constraints**: the summed jamo-level edit distance stays within ``max_edit_ratio`` of the text,
  and every edited word stays readable - :func:`~content_arena.attacks.readability.reading_distance`
  from the original word (or from its last table respelling such as ``ㅅㅂ``/``퍽``, which a reverse
  table vouches for) at most ``max_reading_distance``;
* **search**: word importance by deletion (one batched query per text, each word left out once), then
  a beam search over the most important words: each step proposes up to ``candidates_per_word``
  single edits of the next word for every beam state, drawn round-robin from the transformations
  (the toxic stem inside the word first), and keeps the ``beam_width`` lowest scores. A second pass
  over the same words stacks edits. A text stops at success, at ``query_budget`` or when its words
  are exhausted.

All texts of :meth:`AdaptiveAttacker.attack_batch` advance in lockstep: each step sends one
``defender.scores`` call for every candidate of every text, so the model runs on large batches.
Queries are counted per text (unique texts scored); repeated texts are answered from a cache.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from content_arena.attacks.base import Strategy, StrategyUnavailable, seeded_rng
from content_arena.attacks.english import CharDelete, CharInsert, CharSwap, Hangulize, KeyboardTypo, Leet
from content_arena.attacks.korean import (
    Chosung,
    ConsonantSwap,
    Filler,
    KeyboardTyping,
    Pronounce,
    Repeat,
    Romanize,
    ShapeLookalike,
    SymbolInsert,
    VowelSwap,
)
from content_arena.attacks.lexicon import Word
from content_arena.attacks.readability import edit_distance, jamo_form, reading_distance
from content_arena.attacks.registry import register
from content_arena.attacks.transform import Focus, Transformation, located, splice

__all__ = [
    "DEFAULT_TRANSFORMATIONS",
    "AdaptiveAttacker",
    "AdaptiveResult",
    "AdaptiveStrategy",
    "AdaptiveSummary",
    "bind_adaptive",
    "build_adversarial_set",
    "summarize",
]

logger = logging.getLogger(__name__)

DEFAULT_TRANSFORMATIONS: tuple[type[Transformation], ...] = (
    Pronounce, ConsonantSwap, VowelSwap, ShapeLookalike, Romanize, KeyboardTyping, Chosung,
    CharSwap, CharDelete, CharInsert, KeyboardTypo, Leet, Hangulize, Repeat, SymbolInsert, Filler,
)


@dataclass(frozen=True)
class AdaptiveResult:
    """One attacked text. ``success``: flagged before, not flagged after. ``detected``: flagged before
    (texts the defender already missed are returned unchanged and are not counted as attacks)."""

    original: str
    adversarial: str
    success: bool
    queries: int
    score_before: float
    score_after: float
    edits: tuple[str, ...] = ()
    detected: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AdaptiveSummary:
    texts: int
    attacked: int  # flagged before the attack
    successes: int
    success_rate: float  # successes / attacked
    queries: int  # all queries, the initial scoring included
    queries_per_text: float  # per attacked text
    queries_per_success: float  # mean queries of the successful attacks
    seconds: float | None = None
    texts_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(results: Sequence[AdaptiveResult], seconds: float | None = None) -> AdaptiveSummary:
    attacked = [r for r in results if r.detected]
    wins = [r for r in attacked if r.success]
    return AdaptiveSummary(
        texts=len(results),
        attacked=len(attacked),
        successes=len(wins),
        success_rate=len(wins) / len(attacked) if attacked else 0.0,
        queries=sum(r.queries for r in results),
        queries_per_text=sum(r.queries for r in attacked) / len(attacked) if attacked else 0.0,
        queries_per_success=sum(r.queries for r in wins) / len(wins) if wins else math.nan,
        seconds=seconds,
        texts_per_second=len(results) / seconds if seconds else None,
    )


@lru_cache(maxsize=262_144)
def _jamo_cost(original: str, variant: str) -> int:
    return edit_distance(jamo_form(original), jamo_form(variant))


class _State(NamedTuple):
    score: float
    text: str
    words: tuple[str, ...]
    focus: tuple[Focus, ...]
    anchors: tuple[str, ...]  # what each word must stay readable against
    cost: tuple[int, ...]  # jamo edit distance of each word from the original
    edits: tuple[str, ...]


class _Search:
    """The beam search of one text."""

    def __init__(self, text: str, rng: random.Random) -> None:
        self.text = text
        self.rng = rng
        self.spans: tuple[Word, ...] = located(text)
        self.size = max(1, sum(len(jamo_form(w.text)) for w in self.spans))
        self.queries = 0
        self.seen: set[str] = set()
        self.score_before = math.nan
        self.beam: list[_State] = []
        self.order: list[int] = []
        self.step = 0
        self.done = False

    def render(self, words: Sequence[str]) -> str:
        return splice(self.text, [(w.start, w.end, new) for w, new in zip(self.spans, words, strict=True) if new != w.text])

    def start(self, score: float) -> None:
        words = tuple(w.text for w in self.spans)
        self.score_before = score
        self.beam = [_State(score, self.text, words, tuple(w.focus for w in self.spans), words,
                            (0,) * len(words), ())]


class AdaptiveAttacker:
    """Black-box attacker against any :class:`~content_arena.defender.Defender` (batched ``scores``).

    ``transformations``: instances or classes (default :data:`DEFAULT_TRANSFORMATIONS`);
    ``beam_width`` 1 is greedy search; ``query_budget`` bounds the scored texts per attacked text
    (the first scoring and the deletion ranking included); ``max_edit_ratio`` bounds the summed jamo
    edit distance relative to the text's jamo length; ``max_reading_distance`` bounds each edited
    word's reading distance; ``max_words`` is how many of the most important words are searched,
    ``passes`` how many times (later passes stack edits); ``threshold`` defaults to the defender's.
    """

    def __init__(
        self,
        defender: Any,
        transformations: Sequence[Transformation | type[Transformation]] | None = None,
        *,
        beam_width: int = 1,
        query_budget: int = 50,
        max_edit_ratio: float = 0.35,
        max_reading_distance: float = 0.5,
        candidates_per_word: int = 4,
        max_words: int = 4,
        passes: int = 2,
        threshold: float | None = None,
    ) -> None:
        if beam_width < 1 or query_budget < 2 or candidates_per_word < 1 or max_words < 1 or passes < 1:
            raise ValueError("beam_width, candidates_per_word, max_words, passes >= 1 and query_budget >= 2 needed")
        if not 0.0 < max_edit_ratio <= 1.0:
            raise ValueError(f"max_edit_ratio must be in (0, 1], got {max_edit_ratio}")
        self.defender = defender
        parts = DEFAULT_TRANSFORMATIONS if transformations is None else transformations
        self.transformations: tuple[Transformation, ...] = tuple(t() if isinstance(t, type) else t for t in parts)
        if not self.transformations:
            raise ValueError("the adaptive attacker needs at least one transformation")
        self.beam_width = beam_width
        self.query_budget = query_budget
        self.max_edit_ratio = max_edit_ratio
        self.max_reading_distance = max_reading_distance
        self.candidates_per_word = candidates_per_word
        self.max_words = max_words
        self.passes = passes
        self._threshold = threshold
        self._cache: dict[str, float] = {}

    @property
    def threshold(self) -> float:
        return float(self._threshold if self._threshold is not None else getattr(self.defender, "threshold", 0.5))

    # ------------------------------------------------------------------ scoring

    def _score(self, requests: Sequence[tuple[_Search, Sequence[str]]]) -> list[list[float]]:
        """Score every requested text in one defender call; charges each search its new texts."""
        cache = self._cache
        missing: dict[str, None] = {}
        for search, texts in requests:
            for text in texts:
                if text not in search.seen:
                    search.seen.add(text)
                    search.queries += 1
                if text not in cache:
                    missing[text] = None
        if missing:
            batch = list(missing)
            scores = self.defender.scores(batch)
            cache.update(zip(batch, (float(s) for s in scores), strict=True))
        return [[cache[text] for text in texts] for _, texts in requests]

    # ------------------------------------------------------------------ search steps

    def _has_sites(self, word: str) -> bool:
        return any(t.sites(word) for t in self.transformations)

    def _rank(self, searches: Sequence[_Search]) -> None:
        """Word importance by deletion: one query per word, all texts in one defender call."""
        requests = []
        for search in searches:
            words = search.beam[0].words
            eligible = [i for i, w in enumerate(words) if self._has_sites(w)]
            search.order = eligible
            if len(eligible) > 1 and len(eligible) + 1 < self.query_budget:
                requests.append((search, [search.render(words[:i] + ("",) + words[i + 1 :]) for i in eligible]))
        for (search, _), scores in zip(requests, self._score(requests), strict=True):
            base = search.score_before
            drop = {i: base - s for i, s in zip(search.order, scores, strict=True)}
            focus_bonus = {i for i, w in enumerate(search.spans) if w.focus is not None}
            # Larger score drop first; a toxic stem breaks ties (and orders words no deletion moved).
            search.order.sort(key=lambda i: (-drop[i], i not in focus_bonus, i))
        for search in searches:
            search.order = search.order[: self.max_words]
            if not search.order:
                search.done = True

    def _propose(self, search: _Search) -> list[_State]:
        """Candidate states for the search's next position (moving on past positions with none)."""
        budget_left = self.query_budget - search.queries
        limit = len(search.order) * self.passes
        while search.step < limit and budget_left > 0:
            position = search.order[search.step % len(search.order)]
            proposals: dict[str, _State] = {}
            for state in search.beam:
                for new in self._expand(search, state, position):
                    if new.text not in search.seen and new.text not in proposals:
                        proposals[new.text] = new
            if proposals:
                return list(proposals.values())[:budget_left]
            search.step += 1
        search.done = True
        return []

    def _expand(
        self, search: _Search, state: _State, position: int, transformations: Sequence[Transformation] | None = None
    ) -> list[_State]:
        word, focus = state.words[position], state.focus[position]
        original = search.spans[position].text
        rng = search.rng
        parts = self.transformations if transformations is None else transformations
        pools = [(t, t.candidates(word, focus)) for t in parts]
        pools = [(t, list(c)) for t, c in pools if c]
        rng.shuffle(pools)
        out: list[_State] = []
        other_cost = sum(state.cost) - state.cost[position]
        max_cost = self.max_edit_ratio * search.size
        while pools and len(out) < self.candidates_per_word:
            for entry in list(pools):
                transformation, options = entry
                while options:
                    variant, new_focus = options.pop(int(rng.random() * len(options)))
                    cost = _jamo_cost(original, variant)
                    if other_cost + cost > max_cost:
                        continue
                    if transformation.lexical:
                        anchor = variant
                    else:
                        anchor = state.anchors[position]
                        if reading_distance(anchor, variant) > self.max_reading_distance:
                            continue
                    words = state.words[:position] + (variant,) + state.words[position + 1 :]
                    out.append(_State(
                        math.nan, search.render(words), words,
                        state.focus[:position] + (new_focus,) + state.focus[position + 1 :],
                        state.anchors[:position] + (anchor,) + state.anchors[position + 1 :],
                        state.cost[:position] + (cost,) + state.cost[position + 1 :],
                        (*state.edits, transformation.name),
                    ))
                    break
                if not options:
                    pools.remove(entry)
                if len(out) >= self.candidates_per_word:
                    break
        return out

    def _advance(self, search: _Search, scored: list[_State]) -> None:
        # Lowest score first; among equal scores the cheaper edit (fewer jamo changed) wins.
        merged = {state.text: state for state in sorted(search.beam + scored, key=lambda s: (s.score, sum(s.cost)))}
        search.beam = list(merged.values())[: self.beam_width]
        search.step += 1
        if search.beam[0].score < self.threshold or search.queries >= self.query_budget:
            search.done = True

    # ------------------------------------------------------------------ public API

    def attack_batch(self, texts: Sequence[str], seed: int = 0) -> list[AdaptiveResult]:
        """Attack every text; all of them advance together, one ``defender.scores`` call per step."""
        self._cache = {}
        searches = [_Search(text, seeded_rng("adaptive", seed, text)) for text in texts]
        threshold = self.threshold
        for search, (score,) in zip(searches, self._score([(s, [s.text]) for s in searches]), strict=True):
            search.start(score)
            if score < threshold or not search.spans:
                search.done = True
        self._rank([s for s in searches if not s.done])
        active = [s for s in searches if not s.done]
        while active:
            requests = [(search, self._propose(search)) for search in active]
            requests = [(search, states) for search, states in requests if states]
            scores = self._score([(search, [s.text for s in states]) for search, states in requests])
            for (search, states), values in zip(requests, scores, strict=True):
                self._advance(search, [s._replace(score=v) for s, v in zip(states, values, strict=True)])
            active = [s for s in active if not s.done]
        self._cache = {}
        results = []
        for search in searches:
            best = search.beam[0]
            detected = search.score_before >= threshold
            results.append(AdaptiveResult(
                original=search.text,
                adversarial=best.text,
                success=detected and best.score < threshold,
                queries=search.queries,
                score_before=search.score_before,
                score_after=best.score,
                edits=best.edits,
                detected=detected,
            ))
        return results

    def attack(self, text: str, seed: int = 0) -> AdaptiveResult:
        return self.attack_batch([text], seed)[0]

    def run(self, texts: Sequence[str], seed: int = 0) -> tuple[list[AdaptiveResult], AdaptiveSummary]:
        """:meth:`attack_batch` with timing and a :func:`summarize` summary."""
        started = time.perf_counter()
        results = self.attack_batch(texts, seed)
        return results, summarize(results, time.perf_counter() - started)

    def as_strategy_results(
        self, texts: Sequence[str], seed: int = 0, *, labels: Sequence[int] | None = None
    ) -> list[str]:
        """One variant per text, aligned with ``texts``, for an :class:`~content_arena.evaluation.AdversarialSet`.

        Flagged texts get their adversarial version. The others - clean texts, for the attacked-clean
        FPR - get one random rule edit per targeted word from the same transformations, so garbled
        clean text is measured too. With ``labels`` only toxic texts (label 1) are searched; without,
        every flagged text is (a false positive is then pushed below the threshold too).
        """
        fallback = _fallback(self.transformations)
        out = [fallback.attack(text, seed) for text in texts]
        chosen = [i for i in range(len(texts)) if labels is None or int(labels[i]) == 1]
        for i, result in zip(chosen, self.attack_batch([texts[i] for i in chosen], seed), strict=True):
            if result.detected:
                out[i] = result.adversarial
        return out

    def as_strategy(self) -> AdaptiveStrategy:
        return AdaptiveStrategy(self)

    # ------------------------------------------------------------------ the moves without the scores

    def random_edits(
        self, text: str, seed: int = 0, *, edits: int = 3, operators: Collection[str] | None = None
    ) -> tuple[str, tuple[str, ...]]:
        """``edits`` random moves of the search on ``text`` without querying the defender: returns the
        edited text and the names of the transformations used.

        The same candidates and constraints as the search (:meth:`_expand`: edit-distance budget,
        readability) on up to ``max_words`` words, the ones holding a toxic stem first, stacking edits
        on them in turn as the search's passes do. ``operators`` restricts the moves to those
        transformation names (the edits of a successful search, say). For augmentation: the moves
        the search draws on, applied to other toxic texts and to clean ones. Deterministic per
        ``(seed, text)``.
        """
        parts = self.transformations
        if operators is not None:
            parts = tuple(t for t in parts if t.name in operators)
        search = _Search(text, seeded_rng("adaptive-walk", seed, text))
        search.start(math.nan)
        rng = search.rng
        positions = [i for i, w in enumerate(search.spans) if any(t.sites(w.text) for t in parts)]
        if not positions or edits < 1 or not parts:
            return text, ()
        rng.shuffle(positions)
        positions.sort(key=lambda i: search.spans[i].focus is None)  # stable: toxic stems first
        positions = positions[: 1 + int(rng.random() * min(self.max_words, len(positions)))]
        state = search.beam[0]
        for k in range(edits):
            options = self._expand(search, state, positions[k % len(positions)], parts)
            if options:
                state = options[int(rng.random() * len(options))]
        return state.text, state.edits


def _fallback(transformations: Sequence[Transformation]) -> Strategy:
    from content_arena.attacks.difficulty import Difficulty

    strategy = Difficulty(level=1, language="auto")
    names = {t.name for t in transformations}
    strategy.ko_pool = tuple(t for t in strategy.ko_pool if t.name in names) or strategy.ko_pool
    strategy.en_pool = tuple(t for t in strategy.en_pool if t.name in names) or strategy.en_pool
    strategy.name = "adaptive"
    return strategy


@register
class AdaptiveStrategy(Strategy):
    """The adaptive attacker as a strategy (name ``adaptive``); it needs a defender to query.

    ``get_strategy("adaptive")`` returns it unbound - it leaves texts unchanged (and logs a warning)
    until :meth:`bind` gives it the defender under attack, as the loop does with its champion.
    :meth:`attack_many` attacks the whole batch in lockstep; use it rather than :meth:`attack`.
    """

    name = "adaptive"
    description = "black-box search over the rule edits against the defender's scores (bound by the loop)"

    def __init__(self, attacker: AdaptiveAttacker | None = None) -> None:
        self.attacker = attacker
        self._warned = False

    def bind(self, defender: Any, **options: Any) -> AdaptiveStrategy:
        """Attack ``defender`` from now on (``options`` go to :class:`AdaptiveAttacker`)."""
        self.attacker = AdaptiveAttacker(defender, **options)
        return self

    def transform(self, text: str, rng: random.Random) -> str:
        if self.attacker is None:
            raise StrategyUnavailable("the adaptive strategy has no defender: call bind(defender) first")
        return self.attacker.as_strategy_results([text], seed=int(rng.random() * 2**31))[0]

    def attack_many(self, texts: Sequence[str], seed: int = 0) -> list[str]:
        if self.attacker is None:
            if not self._warned:
                logger.warning("adaptive strategy is not bound to a defender; texts are left unchanged")
                self._warned = True
            return list(texts)
        try:
            return self.attacker.as_strategy_results(list(texts), seed)
        except Exception:  # an attack must never take a battle down
            logger.exception("adaptive attack failed on %d texts; keeping them unchanged", len(texts))
            return list(texts)

    def attack(self, text: str, seed: int = 0) -> str:
        return self.attack_many([text], seed)[0] if text else text


# --------------------------------------------------------------------------- loop integration helpers


def bind_adaptive(strategies: Sequence[Strategy], defender: Any, **options: Any) -> list[Strategy]:
    """Bind every :class:`AdaptiveStrategy` in ``strategies`` to ``defender`` (the champion under attack)."""
    for strategy in strategies:
        if isinstance(strategy, AdaptiveStrategy):
            strategy.bind(defender, **options)
    return list(strategies)


def build_adversarial_set(examples: Sequence[Any], strategies: Sequence[Strategy], seed: int, defender: Any) -> Any:
    """:meth:`AdversarialSet.build <content_arena.evaluation.AdversarialSet.build>` where the adaptive
    strategy searches ``defender`` with the labels known: only toxic texts are attacked, clean ones get
    a random rule edit (so a false positive is not pushed below the threshold and the attacked-clean FPR
    stays honest). Evaluating a challenger, pass the challenger: the attack adapts to it."""
    from content_arena.evaluation import AdversarialSet

    rules = [s for s in strategies if not isinstance(s, AdaptiveStrategy)]
    built = AdversarialSet.build(examples, rules, seed=seed)
    variants = {}
    texts = [e.text for e in examples]
    labels = [int(e.label) for e in examples]
    for strategy in strategies:
        if isinstance(strategy, AdaptiveStrategy):
            attacker = strategy.attacker or AdaptiveAttacker(defender)
            if attacker.defender is not defender:
                attacker = _rebound(attacker, defender)
            variants[strategy.name] = tuple(attacker.as_strategy_results(texts, seed, labels=labels))
        else:
            variants[strategy.name] = built.variants[strategy.name]
    return AdversarialSet(examples=tuple(examples), variants=variants, seed=seed)


def _rebound(attacker: AdaptiveAttacker, defender: Any) -> AdaptiveAttacker:
    return AdaptiveAttacker(
        defender, attacker.transformations, beam_width=attacker.beam_width, query_budget=attacker.query_budget,
        max_edit_ratio=attacker.max_edit_ratio, max_reading_distance=attacker.max_reading_distance,
        candidates_per_word=attacker.candidates_per_word, max_words=attacker.max_words, passes=attacker.passes,
        threshold=attacker._threshold,
    )
