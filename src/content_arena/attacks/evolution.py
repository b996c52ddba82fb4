"""An attacker that evolves across cycles of the loop.

After each cycle the population of strategy names is judged by the champion's evasion of each one on
the held-out adversarial set. A strategy whose evasion falls below ``attack.evolve_below`` has stopped
working; the attacker escalates:

* **composites**: the spent strategy stacked with the families that still evade (``spent+working``),
  and the two strongest working families stacked together (``a+b``); when nothing evades any more, the
  strongest there are stand in for "working";
* **higher levels**: ``ko_levelN`` → ``ko_level{N+1}`` (``en_level`` likewise), a single Korean
  family → ``ko_level2``, an English one → ``en_level2``;
* **search compositions**: the operator sequences of the adaptive search's successful edits that use
  two or more families become named composites (``ko_pronounce+filler``);
* **a larger adaptive budget**: when ``adaptive`` itself falls below the level, its query budget
  doubles and it searches one more pass and one more word.

One spent strategy is retired per birth, the most spent first (no longer attacked each cycle; the
promoter still replays the sets they produced, see :mod:`content_arena.coevolution`). Every strategy carries its :class:`Lineage`:
parents, the cycle it was born, how it was born, and its evasion per cycle.

Rule: births per cycle and composite length are capped, so the battle stays the same size order as
the configured one; the trade-off is that a long-lived attacker explores slowly rather than exploding.
``excluded`` names (families held out of the loop, as the bench does) never appear in any birth.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from content_arena.attacks.registry import UnknownStrategyError, get_strategy

__all__ = [
    "ADAPTIVE",
    "AdaptiveBudget",
    "Lineage",
    "Population",
    "escalations",
]

log = logging.getLogger(__name__)

ADAPTIVE = "adaptive"
MAX_PARTS = 3  # longest composite the attacker builds
MAX_BIRTHS = 4  # new strategies per cycle
MAX_SEARCHED = 2  # of which from the search's edits
MAX_ACTIVE = 14  # strategies attacked per cycle
KO_FAMILIES = ("ko_consonant", "ko_vowel", "ko_pronounce", "ko_shape", "ko_roman", "ko_keyboard", "ko_chosung")
EN_FAMILIES = ("typo_swap", "typo_delete", "typo_insert", "typo_keyboard", "en_typo", "en_leet", "en_hangul")
_LEVEL = re.compile(r"^(ko|en)_level([1-4])$")


@dataclass
class Lineage:
    """Where a strategy came from and how it did.

    Attributes:
        name: The strategy name (``a+b`` for composites).
        parents: The names it was derived from (empty for configured ones).
        born: The cycle it first attacked in (0: configured before the first cycle).
        origin: ``configured``, ``composite``, ``level`` or ``searched``.
        success: Evasion of the champion per cycle (cycle number as a string key, for JSON).
        retired: The cycle after which it stopped being attacked (None while active).
    """

    name: str
    parents: list[str] = field(default_factory=list)
    born: int = 0
    origin: str = "configured"
    success: dict[str, float] = field(default_factory=dict)
    retired: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AdaptiveBudget:
    """The adaptive search's options; :meth:`escalate` grows them, up to a cap."""

    query_budget: int = 50
    passes: int = 2
    max_words: int = 4

    def escalate(self) -> bool:
        """Double the query budget, one more pass and word (capped). Returns whether anything grew."""
        grown = AdaptiveBudget(min(400, self.query_budget * 2), min(4, self.passes + 1), min(8, self.max_words + 1))
        changed = grown != self
        self.query_budget, self.passes, self.max_words = grown.query_budget, grown.passes, grown.max_words
        return changed

    def options(self) -> dict[str, int]:
        return asdict(self)


def _parts(name: str) -> list[str]:
    return [p for p in name.split("+") if p]


def _allowed(name: str, excluded: Iterable[str]) -> bool:
    blocked = set(excluded)
    if name in blocked or any(part in blocked for part in _parts(name)):
        return False
    try:
        get_strategy(name)
    except (UnknownStrategyError, ValueError):
        return False
    return True


def _compose(a: str, b: str) -> str | None:
    parts = _parts(a) + [p for p in _parts(b) if p not in _parts(a)]
    if ADAPTIVE in parts or len(parts) > MAX_PARTS or len(parts) < 2:
        return None
    return "+".join(parts)


def _level_up(name: str) -> str | None:
    match = _LEVEL.match(name)
    if match:
        level = int(match.group(2))
        return f"{match.group(1)}_level{level + 1}" if level < 4 else None
    if name in KO_FAMILIES:
        return "ko_level2"
    if name in EN_FAMILIES:
        return "en_level2"
    return None


def escalations(
    spent: str, evasion: Mapping[str, float], below: float, *, excluded: Iterable[str] = ()
) -> list[tuple[str, list[str], str]]:
    """What a spent strategy escalates into: ``(name, parents, origin)`` candidates, best first.

    Args:
        spent: The strategy that stopped evading.
        evasion: This cycle's evasion per strategy (the working families are read from it).
        below: The evolve level: strategies at or above it still work.
        excluded: Names (families) that must not appear in any candidate.

    Returns:
        The candidates, the higher level first, then composites with the working families.
    """
    excluded = list(excluded)
    rules = {name: rate for name, rate in evasion.items() if name != ADAPTIVE and _allowed(name, excluded)}
    working = sorted((n for n, r in rules.items() if r >= below and n != spent), key=lambda n: -rules[n])
    if not working:  # nothing evades any more: stack the strongest there are
        working = sorted((n for n in rules if n != spent), key=lambda n: -rules[n])[:2]
    out: list[tuple[str, list[str], str]] = []
    level = _level_up(spent)
    if level is not None:
        out.append((level, [spent], "level"))
    for other in working[:2]:
        name = _compose(spent, other)
        if name is not None:
            out.append((name, [spent, other], "composite"))
    return [c for c in out if _allowed(c[0], excluded)]


class Population:
    """The attacker's strategies across cycles, with their lineage; saved as one JSON document.

    Args:
        lineages: Every strategy seen, by name (retired ones included).
        adaptive: The adaptive search's budget.
        cycles_done: How many cycles have been recorded.
        excluded: Names never to breed (held-out families).
    """

    def __init__(self, lineages: Mapping[str, Lineage] | None = None, adaptive: AdaptiveBudget | None = None,
                 cycles_done: int = 0, excluded: Iterable[str] = ()) -> None:
        self.lineages: dict[str, Lineage] = dict(lineages or {})
        self.adaptive = adaptive or AdaptiveBudget()
        self.cycles_done = cycles_done
        self.excluded = sorted(set(excluded))

    # -------------------------------------------------------------------- persistence

    @classmethod
    def start(cls, configured: Sequence[str], *, excluded: Iterable[str] = ()) -> Population:
        """A population of the configured strategies (born in cycle 0)."""
        return cls({name: Lineage(name) for name in configured}, excluded=excluded)

    @classmethod
    def load(cls, path: Path, configured: Sequence[str], *, excluded: Iterable[str] = ()) -> Population:
        """The saved population at ``path``, or a new one of ``configured`` when there is none.

        Configured names missing from a saved population join it as configured strategies.

        Args:
            path: The JSON document (see :meth:`save`).
            configured: ``attack.strategies``.
            excluded: Names never to breed (merged with the saved ones).

        Returns:
            The population.
        """
        if not path.is_file():
            return cls.start(configured, excluded=excluded)
        data = json.loads(path.read_text(encoding="utf-8"))
        lineages = {item["name"]: Lineage(**item) for item in data.get("strategies", [])}
        for name in configured:
            lineages.setdefault(name, Lineage(name, born=int(data.get("cycles_done", 0))))
        return cls(lineages, AdaptiveBudget(**data.get("adaptive", {})), int(data.get("cycles_done", 0)),
                   [*data.get("excluded", []), *excluded])

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles_done": self.cycles_done,
            "adaptive": self.adaptive.options(),
            "excluded": self.excluded,
            "strategies": [lineage.to_dict() for lineage in self.lineages.values()],
        }

    def save(self, path: Path) -> Path:
        """Write the population as JSON (atomically: a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return path

    # -------------------------------------------------------------------- the cycle

    def active(self) -> list[str]:
        """The strategies to attack with this cycle, in birth order."""
        return [name for name, lineage in self.lineages.items() if lineage.retired is None]

    def record(self, cycle: int, evasion: Mapping[str, float]) -> None:
        """Store this cycle's evasion of each strategy in its lineage."""
        for name, rate in evasion.items():
            lineage = self.lineages.setdefault(name, Lineage(name, born=cycle))
            lineage.success[str(cycle)] = round(float(rate), 4)
        self.cycles_done = max(self.cycles_done, cycle)

    def evolve(self, cycle: int, evasion: Mapping[str, float], below: float,
               searched: Sequence[Sequence[str]] = ()) -> tuple[list[Lineage], list[str]]:
        """Escalate the strategies that stopped evading; returns (born, retired).

        Args:
            cycle: The cycle just judged (births attack from ``cycle + 1``).
            evasion: Its evasion per active strategy.
            below: The evolve level (``attack.evolve_below``).
            searched: The edit sequences (transformation names) of the adaptive search's successes.

        Returns:
            The new lineages and the names retired.
        """
        born: list[Lineage] = []
        retired: list[str] = []

        def birth(name: str, parents: list[str], origin: str) -> None:
            if name in self.lineages or any(b.name == name for b in born):
                return
            born.append(Lineage(name, parents, cycle + 1, origin))

        spent = [n for n in self.active() if n in evasion and evasion[n] < below]
        if ADAPTIVE in spent:
            spent.remove(ADAPTIVE)
            if self.adaptive.escalate():
                log.info("adaptive search escalated to %s", self.adaptive.options())
        # Round-robin over the spent strategies (most spent first), so each gets its best escalation
        # before any gets a second one.
        options = [[c for c in escalations(name, evasion, below, excluded=self.excluded) if c[0] not in self.lineages]
                   for name in sorted(spent, key=lambda n: evasion[n])]
        for rank in range(max((len(o) for o in options), default=0)):
            for candidates in options:
                if rank < len(candidates) and len(born) < MAX_BIRTHS - MAX_SEARCHED:
                    birth(*candidates[rank])
        sequences = Counter(
            "+".join(dict.fromkeys(edits)) for edits in searched if len(set(edits)) >= 2
        )
        taken = 0
        for name, _ in sequences.most_common():
            if taken >= MAX_SEARCHED or len(born) >= MAX_BIRTHS:
                break
            if len(_parts(name)) <= MAX_PARTS and _allowed(name, self.excluded) and name not in self.lineages:
                birth(name, _parts(name), "searched")
                taken += 1
        # One spent strategy retires per birth (the most spent first): the population keeps its size, so
        # a cycle where every rule stops evading does not leave the battle to a handful of newborns.
        for name in sorted(spent, key=lambda n: evasion[n])[: len(born)]:
            self.lineages[name].retired = cycle
            retired.append(name)
        for lineage in born:
            self.lineages[lineage.name] = lineage
        overflow = len(self.active()) - MAX_ACTIVE
        if overflow > 0:  # the weakest of the older strategies make room
            older = [n for n in self.active() if n != ADAPTIVE and self.lineages[n].born <= cycle]
            for name in sorted(older, key=lambda n: evasion.get(n, 0.0))[:overflow]:
                self.lineages[name].retired = cycle
                retired.append(name)
        if born or retired:
            log.info("cycle %d: born %s; retired %s", cycle, [b.name for b in born], retired)
        return born, retired

    def history(self) -> dict[str, dict[int, float]]:
        """Evasion per strategy per cycle, for charts and tables."""
        return {name: {int(c): v for c, v in lineage.success.items()} for name, lineage in self.lineages.items()}
