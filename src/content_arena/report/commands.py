"""``arena report``, mounted by ``content_arena.cli`` through :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="arena.yaml (default: $ARENA_CONFIG or ./arena.yaml)")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Directory for index.html and its PNGs "
                                                                 "(default: <home>/report).")]


def report(
    config: ConfigOpt = None,
    out: OutOpt = None,
    examples: Annotated[bool, typer.Option("--examples/--no-examples",
                                           help="Score each version's battle evasions with the next version.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Write an HTML robustness report (evasion per strategy × version, F1/FPR trend, gate history)."""
    from content_arena.cli import _setup, stderr
    from content_arena.report import build_report

    cfg = _setup(config, verbose)
    path = build_report(cfg, out, with_examples=examples)
    stderr.print(f"report: [bold]{path}[/]", highlight=False)
    typer.echo(str(path))


def register(app: typer.Typer, pipeline_app: typer.Typer) -> None:
    from content_arena.cli import cli_command

    app.command("report")(cli_command(report))
