"""`leadscore` command line: thin commands over the lifecycle stages.

Exit codes: 0 success, 1 bad input data or a refused step, 2 bad config or usage; `exit_code`
is the one table from error classes to codes, used by every command through `run_step`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leadscore.config import DEFAULT_CONFIG, load_config
from leadscore.errors import (
    ConfigError,
    InputError,
    LeadscoreError,
    RefusedError,
    UsageError,
)

app = typer.Typer(
    name="leadscore",
    help="Lead-conversion scoring: train, score, explain, learn from sales feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="YAML config mapping your columns onto roles.")
]
EXIT_DATA = 1  # bad input data or a refused step
EXIT_USAGE = 2  # bad config or a bad command-line value
# the one table from error families to exit codes
EXIT_CODES: tuple[tuple[type[LeadscoreError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (UsageError, EXIT_USAGE),
    (InputError, EXIT_DATA),
    (RefusedError, EXIT_DATA),
)


def console() -> Console:
    """Console for human-readable output (plain text when not a terminal)."""
    return Console(stderr=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print an error to stderr and return the exit to raise."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def exit_code(exc: BaseException) -> int | None:
    """The exit code of a known error class; None for any other error (a bug: traceback)."""
    for family, code in EXIT_CODES:
        if isinstance(exc, family):
            return code
    return None


def run_step(step: Callable[[], int | None]) -> None:
    """Run a command body, turning known errors into clear messages and exit codes."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        code = step()
    except Exception as exc:
        known = exit_code(exc)
        if known is None:
            raise
        raise fail(str(exc), known) from None
    if code:
        raise typer.Exit(code)


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Folder for leads.csv and activities.csv.")] = Path(
        "data/sample"
    ),
    leads: Annotated[int, typer.Option(min=10, help="Number of leads.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
) -> None:
    """Write a synthetic B2B funnel (leads, activities) to OUT."""

    def body() -> None:
        from leadscore.data.sample import write_sample

        paths = write_sample(out, n_leads=leads, seed=seed)
        for name, path in paths.items():
            console().print(f"wrote {name}: {path}")

    run_step(body)


@app.command()
def validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check the configured data against the contract; report every problem at once."""

    def body() -> int:
        from leadscore.data.contract import read_lead_data
        from leadscore.errors import summarize

        settings = load_config(config)
        data, problems = read_lead_data(settings)
        out = console()
        if data is not None:
            for note in summarize(list(data.warnings)):
                out.print(f"note: {note}")
            out.print(
                f"{len(data.leads):,} leads"
                + (f", {len(data.activities):,} activities" if data.activities is not None else "")
                + f"; targets: {', '.join(settings.targets)}"
                + f"; categorical: {', '.join(data.categorical) or '-'}"
                + f"; numeric: {', '.join(data.numeric) or '-'}"
                + (f"; export date {data.export_date:%Y-%m-%d}" if data.export_date else "")
            )
        if problems:
            err = Console(stderr=True, highlight=False, soft_wrap=True)
            err.print(f"[bold red]{len(problems)} problem(s):[/]")
            for line in summarize(problems):
                err.print(f"  - {line}")
            return EXIT_DATA
        out.print("[green]ok[/]: the data meets the contract")
        return 0

    run_step(body)


@app.command()
def examples(
    config: ConfigOption = DEFAULT_CONFIG,
    out: Annotated[Path, typer.Option(help="Parquet file for the examples.")] = Path(
        "data/examples.parquet"
    ),
) -> None:
    """Build point-in-time training examples and write them to a Parquet file."""

    def body() -> None:
        from leadscore.data.contract import load_lead_data
        from leadscore.data.io import write_parquet
        from leadscore.data.snapshots import build_examples

        settings = load_config(config)
        data = load_lead_data(settings)
        ex = build_examples(data, settings)
        write_parquet(ex.frame, out)
        out_console = console()
        out_console.print(f"{len(ex.frame):,} examples from {len(data.leads):,} leads -> {out}")
        for target in ex.targets:
            labels = ex.label(target)
            out_console.print(
                f"  {target}: {int(labels.notna().sum()):,} labelled "
                f"({int(labels.sum()):,} positive), {int(labels.isna().sum()):,} censored"
            )

    run_step(body)


@app.command()
def feedback(
    files: Annotated[
        list[Path], typer.Argument(help="Filled-in report.xlsx files and/or CSV files.")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Store sales feedback (meeting_held, disqualified, won, lost) as new labels."""

    def body() -> int:
        from leadscore.feedback.store import ingest_feedback

        settings = load_config(config)
        summary = ingest_feedback(settings, files)
        out = console()
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for note in summary.warnings:
            out.print(f"note: {note}")
        for problem in summary.problems:
            err.print(f"rejected: {problem}")
        out.print(summary.line())
        return EXIT_DATA if summary.readable_files == 0 else 0

    run_step(body)


def _train(config: Path, promote: bool, metrics_out: Path | None) -> None:
    from leadscore.feedback.store import read_store
    from leadscore.modeling.train import run_training

    settings = load_config(config)
    run_training(
        settings,
        promote=promote,
        metrics_out=metrics_out,
        feedback=read_store(settings.data.feedback),
        console=console(),
    )


MetricsOption = Annotated[
    Path | None, typer.Option(help="Also write metrics.json (flat keys) to this file.")
]


@app.command()
def train(
    config: ConfigOption = DEFAULT_CONFIG,
    promote: Annotated[
        bool, typer.Option("--promote", help="Run the promotion gate after training.")
    ] = False,
    metrics_out: MetricsOption = None,
) -> None:
    """Train calibrated models (with baselines), log the run to MLflow, register the model.

    Sales feedback in the store (`data.feedback`) is merged with the CRM outcomes first.
    """
    run_step(lambda: _train(config, promote, metrics_out))


@app.command()
def retrain(config: ConfigOption = DEFAULT_CONFIG, metrics_out: MetricsOption = None) -> None:
    """Train with the sales feedback, then run the promotion gate (champion/challenger)."""
    run_step(lambda: _train(config, True, metrics_out))


@app.command()
def promote(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Move @champion to the @challenger if it meets the minimums and is not worse."""

    def body() -> None:
        from leadscore.modeling.train import run_promotion

        run_promotion(load_config(config), console=console())

    run_step(body)


@app.command()
def score(
    as_of: Annotated[
        str, typer.Option("--as-of", help="Scoring date (YYYY-MM-DD): leads as they stand then.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for scores and reports.")],
    config: ConfigOption = DEFAULT_CONFIG,
    leads: Annotated[
        Path | None, typer.Option(help="Leads file to score (default: config).")
    ] = None,
    activities: Annotated[
        Path | None, typer.Option(help="Activities file (default: config).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model URI or exported folder (default: models:/NAME@champion)."),
    ] = None,
) -> None:
    """Score every open lead at the as-of date; write scores, reasons and reports to OUT."""

    def body() -> None:
        import pandas as pd

        from leadscore.scoring.run import run_scoring

        try:
            when = pd.Timestamp(as_of)
        except ValueError:
            when = pd.NaT
        if pd.isna(when):
            raise UsageError(f"--as-of: not a date (YYYY-MM-DD): {as_of!r}")
        out_console = console()
        result = run_scoring(
            load_config(config),
            when,
            out,
            leads_path=leads,
            activities_path=activities,
            model_uri=model,
            console=out_console,
        )
        grades = ", ".join(f"{g}: {n:,}" for g, n in result.grade_counts.items())
        out_console.print(
            f"scored {result.n_scored:,} open leads ({result.n_skipped:,} skipped), "
            f"{result.n_explore:,} marked explore; grades {grades}"
        )
        for name, path in result.paths.items():
            out_console.print(f"  {name}: {path}")

    run_step(body)
