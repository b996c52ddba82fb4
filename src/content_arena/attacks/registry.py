"""Name -> strategy class registry, plus building strategies from names and specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from content_arena.attacks.base import Composite, Strategy, StrategyUnavailable

__all__ = [
    "LLM_STRATEGY",
    "MAX_COMPOSITE_PARTS",
    "MAX_STRATEGY_NAME_LENGTH",
    "StrategyNameError",
    "UnknownStrategyError",
    "available_strategies",
    "get_strategy",
    "register",
    "registered",
    "resolve_strategies",
]

LLM_STRATEGY = "llm"
# A strategy name (composites included) is stored per round in a varchar(100) column, and each part of
# a composite can lengthen the text again: both are bounded so a name is always storable and one
# attack costs at most a few passes over the text.
MAX_STRATEGY_NAME_LENGTH = 100
MAX_COMPOSITE_PARTS = 4
_LLM_OPTION_KEYS = ("host", "model", "timeout", "retries", "temperature", "backend", "api_key")

StrategyType = TypeVar("StrategyType", bound=type[Strategy])

_REGISTRY: dict[str, type[Strategy]] = {}
_RULE_NAMES: list[str] = []


class UnknownStrategyError(ValueError):
    """A strategy name that is not registered (the message lists the known ones)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown strategy {name!r}; known strategies: {', '.join(self.known)}")


class StrategyNameError(UnknownStrategyError):
    """A strategy name longer than MAX_STRATEGY_NAME_LENGTH or a composite of more than MAX_COMPOSITE_PARTS parts."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.known = []
        ValueError.__init__(self, reason)


def check_strategy_name(name: str) -> None:
    """Raise :class:`StrategyNameError` when ``name`` is too long or has too many ``+`` parts.

    Args:
        name: a strategy name or an ``a+b`` composite.
    """
    if len(name) > MAX_STRATEGY_NAME_LENGTH:
        raise StrategyNameError(name, f"a strategy name has at most {MAX_STRATEGY_NAME_LENGTH} characters")
    if name.count("+") + 1 > MAX_COMPOSITE_PARTS:
        raise StrategyNameError(name, f"a composite strategy has at most {MAX_COMPOSITE_PARTS} parts")


def register(cls: StrategyType) -> StrategyType:
    """Class decorator: make ``cls`` buildable by its ``name`` (must be unique, no ``+``/``,``)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name or any(c in name for c in "+, ") or name == "all":
        raise ValueError(f"strategy class {cls.__name__} needs a plain `name` (no '+', ',' or spaces)")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"strategy name {name!r} is already registered by {existing.__name__}")
    _REGISTRY[name] = cls
    return cls


def registered() -> Mapping[str, type[Strategy]]:
    """Read-only view of the registry (name -> class), in registration order."""
    return dict(_REGISTRY)


def available_strategies() -> list[str]:
    """Every registered name: the rule strategies, ``"llm"``, then any added with :func:`register`."""
    first = [name for name in (*_RULE_NAMES, LLM_STRATEGY) if name in _REGISTRY]
    return first + [name for name in _REGISTRY if name not in first]


def _llm_options(llm: Mapping[str, Any] | None) -> dict[str, Any]:
    if not llm:
        return {}
    return {key: llm[key] for key in _LLM_OPTION_KEYS if llm.get(key) is not None}


def _build_one(name: str, llm: Mapping[str, Any] | None) -> Strategy:
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UnknownStrategyError(name, available_strategies())
    if name == LLM_STRATEGY:
        return cls(**_llm_options(llm))
    return cls()


def get_strategy(name: str, *, llm: Mapping[str, Any] | None = None) -> Strategy:
    """Build the strategy called ``name``; ``"a+b"`` builds a :class:`Composite` of ``a`` then ``b``.

    ``"llm"`` is built from ``llm`` ({host, model, timeout, retries, temperature[, backend, api_key]}) and raises
    :class:`StrategyUnavailable` without a host.
    """
    check_strategy_name(str(name))
    parts = [part.strip() for part in str(name).split("+")]
    if not all(parts):
        raise UnknownStrategyError(str(name), available_strategies())
    strategies = [_build_one(part, llm) for part in parts]
    return strategies[0] if len(strategies) == 1 else Composite(strategies)


def _spec_names(spec: str | Sequence[str]) -> list[str]:
    items = spec.split(",") if isinstance(spec, str) else [str(item) for item in spec]
    names: list[str] = []
    for item in items:
        names.extend(part.strip() for part in item.split(",") if part.strip())
    return names


def resolve_strategies(
    spec: str | Sequence[str],
    *,
    llm: Mapping[str, Any] | None = None,
    skip_unavailable: bool = False,
) -> list[Strategy]:
    """Strategies for a config value: ``"all"``, ``"jamo_split,spacing"`` or ``["nfd", "a+b"]``.

    ``"all"`` expands to every rule strategy, plus ``"llm"`` only when ``llm`` has a host. Names are
    de-duplicated in order. Unknown names raise :class:`UnknownStrategyError`; an explicitly named
    strategy that cannot run raises :class:`StrategyUnavailable` unless ``skip_unavailable`` is set.
    """
    names = _spec_names(spec)
    if not names:
        raise UnknownStrategyError(str(spec), available_strategies())
    has_llm_host = bool(_llm_options(llm).get("host"))
    expanded: list[str] = []
    for name in names:
        if name.lower() == "all":
            expanded.extend(_RULE_NAMES)
            if has_llm_host:
                expanded.append(LLM_STRATEGY)
        else:
            expanded.append(name)
    strategies: list[Strategy] = []
    seen: set[str] = set()
    for name in expanded:
        if name in seen:
            continue
        seen.add(name)
        try:
            strategies.append(get_strategy(name, llm=llm))
        except StrategyUnavailable:
            if not skip_unavailable:
                raise
    return strategies


def mark_rule_strategies(names: Sequence[str]) -> None:
    """Record which registered names ``"all"`` expands to (called once by the package)."""
    _RULE_NAMES[:] = list(names)

