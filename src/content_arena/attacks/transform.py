"""Word-level transformations and the rule strategies built from them (TextAttack-style parts).

A :class:`Transformation` knows one kind of edit (tensing ``시``->``씨``, a keyboard typo, romanisation
...). It lists the *sites* of a word where it can act - ``(start, end, options)``: replace
``word[start:end]`` by one of ``options`` (``start == end`` inserts) - and caches them per word, so
applying it again to the same word costs a dictionary lookup and a few random draws.

* :meth:`Transformation.apply` edits a random subset of the sites (about ``rate`` of them, at least
  one, at most ``max_sites``), preferring the sites inside the word's *focus* (the toxic stem the
  lexicon found), and returns the new focus so edits can be stacked;
* :meth:`Transformation.neighbours` lists every single-site variant - the candidate set the
  adaptive attacker searches.

:class:`RuleStrategy` turns a chain of transformations into a :class:`Strategy`: it locates the
words (:func:`content_arena.attacks.lexicon.locate`), edits every word holding a toxic stem (and a
few others), and falls back to random words when the lexicon finds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from content_arena.attacks.base import Strategy, check_rate
from content_arena.attacks.lexicon import Word, locate

__all__ = ["RuleStrategy", "Site", "Transformation", "choose", "located", "rule_strategy", "splice"]

#: ``(start, end, options)``: replace ``word[start:end]`` by one of ``options``.
Site = tuple[int, int, tuple[str, ...]]
Focus = tuple[int, int] | None

_CACHE_LIMIT = 50_000
_CACHED_TEXT_LENGTH = 1_000  # longer texts are analysed every time (bounds the caches' memory)


def choose(items: Sequence, rate: float, rng: random.Random, *, at_least_one: bool = True) -> list:
    """Each item kept with probability ``rate`` (order kept); one random item if none was kept."""
    if not items:
        return []
    draw = rng.random
    chosen = [item for item in items if draw() < rate]
    if not chosen and at_least_one:
        chosen = [items[int(draw() * len(items))]]
    return chosen


def splice(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with ``text[start:end]`` replaced for each ``(start, end, new)`` (sorted, non-overlapping)."""
    out: list[str] = []
    previous = 0
    for start, end, new in edits:
        out.append(text[previous:start])
        out.append(new)
        previous = end
    out.append(text[previous:])
    return "".join(out)


def _position(site: Site) -> tuple[int, int]:
    return site[0], site[1]


def _overlaps(site: Site, focus: tuple[int, int]) -> bool:
    start, end = site[0], site[1]
    if start == end:  # an insertion touches the focus when it lies inside or on its edge
        return focus[0] <= start <= focus[1]
    return start < focus[1] and end > focus[0]


class Transformation:
    """One kind of word edit. Subclasses set the class attributes and implement :meth:`find_sites`.

    ``family`` is the obfuscation group (KOTOX: phonological, iconological, transliteration,
    syntactic, pragmatic; plus typo and unicode); ``stage`` orders stacked edits (sound changes
    before script changes before insertions); ``lexical`` marks whole-stem table respellings
    (``ㅅㅂ``, ``퍽``), whose readability comes from the table rather than from their spelling.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    family: ClassVar[str] = ""
    script: ClassVar[str] = "any"  # "ko", "en" or "any": which words it can change
    stage: ClassVar[int] = 5
    lexical: ClassVar[bool] = False
    default_rate: ClassVar[float] = 0.5
    max_sites: ClassVar[int] = 0  # 0: no limit

    def __init__(self, rate: float | None = None) -> None:
        self.rate = check_rate(self.default_rate if rate is None else rate)
        self._sites: dict[str, tuple[Site, ...]] = {}
        self._focus_sites: dict[tuple[str, tuple[int, int]], tuple[Site, ...]] = {}

    def find_sites(self, word: str) -> list[Site]:
        """Every place in ``word`` this transformation can edit (uncached; see :meth:`sites`). Options
        must differ from the text they replace."""
        raise NotImplementedError

    def sites(self, word: str) -> tuple[Site, ...]:
        """:meth:`find_sites`, sorted by position, options non-empty, cached per word."""
        found = self._sites.get(word)
        if found is None:
            if len(self._sites) >= _CACHE_LIMIT:
                self._sites.clear()
            found = tuple(sorted((site for site in self.find_sites(word) if site[2]), key=_position))
            self._sites[word] = found
        return found

    def focus_sites(self, word: str, focus: Focus) -> tuple[Site, ...]:
        """The sites touching ``focus`` when there are any, else all sites (cached)."""
        if focus is None:
            return self.sites(word)
        key = (word, focus)
        found = self._focus_sites.get(key)
        if found is None:
            sites = self.sites(word)
            found = tuple(site for site in sites if _overlaps(site, focus)) or sites
            if len(self._focus_sites) >= _CACHE_LIMIT:
                self._focus_sites.clear()
            self._focus_sites[key] = found
        return found

    def apply(
        self, word: str, focus: Focus, rng: random.Random, *, max_sites: int | None = None
    ) -> tuple[str, Focus]:
        """Edit about ``rate`` of the (focus) sites of ``word`` (at most ``max_sites``, default the
        class's); returns the new word and its focus."""
        sites = self.focus_sites(word, focus)
        if not sites:
            return word, focus
        draw = rng.random
        limit = self.max_sites if max_sites is None else max_sites
        if limit == 1 or len(sites) == 1:
            chosen = [sites[int(draw() * len(sites))]]
        else:
            rate = self.rate
            chosen = [site for site in sites if draw() < rate] or [sites[int(draw() * len(sites))]]
            if limit and len(chosen) > limit:
                chosen = sorted(rng.sample(chosen, limit))
        edits: list[tuple[int, int, str]] = []
        last_end = -1
        for start, end, options in chosen:
            if start < last_end or (start == last_end == end and edits and edits[-1][0] == start):
                continue  # overlaps the previous edit
            edits.append((start, end, options[int(draw() * len(options))] if len(options) > 1 else options[0]))
            last_end = end
        out = splice(word, edits) if len(edits) > 1 else word[: edits[0][0]] + edits[0][2] + word[edits[0][1] :]
        if focus is None:
            return out, None
        size = len(word)
        keep_right = min(size - focus[1], size - last_end)
        return out, (min(focus[0], edits[0][0]), len(out) - keep_right)

    def candidates(self, word: str, focus: Focus = None) -> list[tuple[str, Focus]]:
        """Every variant of ``word`` that changes exactly one (focus) site, with its new focus."""
        out: dict[str, Focus] = {}
        size = len(word)
        for start, end, options in self.focus_sites(word, focus):
            head, tail = word[:start], word[end:]
            for option in options:
                variant = head + option + tail
                if variant != word and variant not in out:
                    if focus is None:
                        out[variant] = None
                    else:
                        keep_right = min(size - focus[1], size - end)
                        out[variant] = (min(focus[0], start), len(variant) - keep_right)
        return list(out.items())

    def neighbours(self, word: str, focus: Focus = None) -> list[str]:
        """Every variant of ``word`` that changes exactly one (focus) site, without duplicates."""
        return [variant for variant, _ in self.candidates(word, focus)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate})"


_LOCATE_CACHE: dict[str, tuple[Word, ...]] = {}


def located(text: str) -> tuple[Word, ...]:
    """:func:`locate`, memoised (rules attack the same texts with many seeds)."""
    words = _LOCATE_CACHE.get(text)
    if words is None:
        words = locate(text)
        if len(text) <= _CACHED_TEXT_LENGTH:
            if len(_LOCATE_CACHE) >= _CACHE_LIMIT:
                _LOCATE_CACHE.clear()
            _LOCATE_CACHE[text] = words
    return words


class RuleStrategy(Strategy):
    """A strategy made of word transformations applied in order to the targeted words.

    Words holding a toxic stem are each edited with probability ``word_rate`` (at least one), other
    words with probability ``rate``; without any stem, each eligible word with probability
    ``fallback_rate`` (at least one). Subclasses set ``name``, ``description`` and ``parts`` (the
    transformation classes, instantiated once per strategy).
    """

    parts: ClassVar[tuple[type[Transformation], ...]] = ()
    word_rate: ClassVar[float] = 1.0
    other_rate: ClassVar[float] = 0.1
    fallback_rate: ClassVar[float] = 0.4

    def __init__(self, transformations: Sequence[Transformation] | None = None) -> None:
        self.transformations: tuple[Transformation, ...] = (
            tuple(transformations) if transformations is not None else tuple(part() for part in self.parts)
        )
        if not self.transformations:
            raise ValueError(f"{type(self).__name__} needs at least one transformation")
        self._plans: dict[str, tuple[tuple[Word, ...], tuple[Word, ...]]] = {}

    def eligible(self, word: str) -> bool:
        return any(t.sites(word) for t in self.transformations)

    def _plan(self, text: str) -> tuple[tuple[Word, ...], tuple[Word, ...]]:
        """(eligible words with a stem, other eligible words) of ``text``, memoised per strategy."""
        plan = self._plans.get(text)
        if plan is None:
            words = [word for word in located(text) if self.eligible(word.text)]
            plan = (
                tuple(word for word in words if word.focus is not None),
                tuple(word for word in words if word.focus is None),
            )
            if len(text) <= _CACHED_TEXT_LENGTH:
                if len(self._plans) >= _CACHE_LIMIT:
                    self._plans.clear()
                self._plans[text] = plan
        return plan

    def targets(self, text: str, rng: random.Random) -> list[Word]:
        """The words to edit in ``text`` (see the class docstring)."""
        focused, others = self._plan(text)
        if not focused:
            return choose(others, self.fallback_rate, rng)
        chosen = choose(focused, self.word_rate, rng) if self.word_rate < 1.0 else list(focused)
        if others and self.other_rate > 0.0:
            extra = choose(others, self.other_rate, rng, at_least_one=False)
            if extra:
                chosen = sorted(chosen + extra, key=lambda word: word.start)
        return chosen

    def edit_word(self, word: Word, rng: random.Random) -> str:
        text, focus = word.text, word.focus
        for transformation in self.transformations:
            text, focus = transformation.apply(text, focus, rng)
        return text

    def transform(self, text: str, rng: random.Random) -> str:
        targets = self.targets(text, rng)
        if not targets:
            return text
        if len(targets) == 1:
            word = targets[0]
            return text[: word.start] + self.edit_word(word, rng) + text[word.end :]
        return splice(text, [(word.start, word.end, self.edit_word(word, rng)) for word in targets])


def rule_strategy(transformation: type[Transformation]) -> type[RuleStrategy]:
    """Register and return a one-transformation :class:`RuleStrategy` named like the transformation."""
    from content_arena.attacks.registry import register

    cls = type(
        f"{transformation.__name__}Strategy",
        (RuleStrategy,),
        {
            "name": transformation.name,
            "description": transformation.description,
            "parts": (transformation,),
            "__doc__": transformation.__doc__,
            "__module__": transformation.__module__,
        },
    )
    return register(cls)
