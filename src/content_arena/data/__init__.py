"""Labelled data for Content Arena: the shipped seed corpus and loaders for public moderation datasets."""

from content_arena.data.loaders import (
    FORMATS,
    DataError,
    Example,
    LoadedExamples,
    load_examples,
    load_seed_corpus,
    parse_label,
    split_examples,
)

__all__ = [
    "FORMATS",
    "DataError",
    "Example",
    "LoadedExamples",
    "load_examples",
    "load_seed_corpus",
    "parse_label",
    "split_examples",
]
