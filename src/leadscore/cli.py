"""`leadscore` command line: thin commands over the lifecycle stages.

Exit codes: 0 success, 1 bad input data or a refused step, 2 bad config or usage; `exit_code`
is the one table from error classes to codes, used by every command through `run_step`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import rich.markup
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from leadscore.accounts.model import train_accounts
from leadscore.backtest.run import BacktestResult, run_backtest
from leadscore.config import DEFAULT_CONFIG, load_config
from leadscore.data.contract import load_lead_data, read_lead_data
from leadscore.data.io import write_parquet
from leadscore.data.sample import write_sample
from leadscore.data.snapshots import build_examples
from leadscore.errors import (
    ConfigError,
    InputError,
    LeadscoreError,
    RefusedError,
    UsageError,
    summarize,
)
from leadscore.feedback.store import ingest_feedback, read_store
from leadscore.modeling.fit import MODEL, TargetResult
from leadscore.modeling.promotion import PromotionDecision, run_promotion
from leadscore.modeling.train import TrainingResult, run_training
from leadscore.scoring.run import run_scoring
from leadscore.spark import spark_scorer

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
PLAIN_WIDTH = 120  # console width when the output is a file or a pipe
EXIT_DATA = 1  # bad input data or a refused step
EXIT_USAGE = 2  # bad config or a bad command-line value
# the one table from error families to exit codes
EXIT_CODES: tuple[tuple[type[LeadscoreError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (UsageError, EXIT_USAGE),
    (InputError, EXIT_DATA),
    (RefusedError, EXIT_DATA),
)
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC"),
    ("pr_auc", "PR"),
    ("log_loss", "logloss"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("lift_top10", "lift10"),
    ("captured_top20", "cap20"),
)


def console() -> Console:
    """Console for human-readable output (plain text, 120 columns wide, when not a terminal)."""
    return Console(
        stderr=False,
        highlight=False,
        soft_wrap=True,
        width=None if sys.stdout.isatty() else PLAIN_WIDTH,
    )


def fail(message: str, code: int) -> typer.Exit:
    """Print an error to stderr and return the exit to raise."""
    # the message as written: brackets in it (a pip extra, a column) are no markup
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {rich.markup.escape(message)}"
    )
    return typer.Exit(code)


def exit_code(exc: BaseException) -> int | None:
    """The exit code of a known error class; None for any other error (a bug: traceback)."""
    for family, code in EXIT_CODES:
        if isinstance(exc, family):
            return code
    return None


class ConsoleLogHandler(logging.Handler):
    """The library's log lines on the CLI's console: plain text, warnings in yellow, no wrapping."""

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        style = "yellow" if record.levelno >= logging.WARNING else None
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        console().print(prefix + text, style=style, markup=False, highlight=False)


def configure_logging() -> None:
    """Show the library's INFO log lines on the console (once, however often it is called)."""
    logger = logging.getLogger("leadscore")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, ConsoleLogHandler) for h in logger.handlers):
        logger.addHandler(ConsoleLogHandler())


def run_step(step: Callable[[], int | None]) -> None:
    """Run a command body, turning known errors into clear messages and exit codes."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    configure_logging()
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
    later_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Also write OUT/later/: the same funnel exported this many days later "
            "(new leads, events and outcomes); 0 writes none.",
        ),
    ] = 0,
    truth: Annotated[
        bool,
        typer.Option(
            help="Also write truth.csv: each open lead's true P(meeting) and P(won) at the "
            "export date, for measuring models (training never reads it).",
        ),
    ] = False,
) -> None:
    """Write a synthetic B2B funnel (leads, activities, feedback) to OUT."""

    def body() -> None:
        paths = write_sample(out, n_leads=leads, seed=seed, later_days=later_days, truth=truth)
        for name, path in paths.items():
            console().print(f"wrote {name}: {path}")

    run_step(body)


@app.command()
def validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check the configured data against the contract; report every problem at once."""

    def body() -> int:
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
    """Store sales feedback: meeting_held, disqualified, won, lost as new labels; no_response,
    score_wrong (and comments) stored for review, never as labels."""

    def body() -> int:
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


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def summary_table(results: dict[str, TargetResult]) -> Table:
    """Model vs baselines per target, on the validation rows."""
    table = Table(
        title="validation (ROC/PR AUC, lift in top 10%, share captured in top 20%)",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("target", no_wrap=True)
    table.add_column("model", no_wrap=True)
    for _, title in SUMMARY_METRICS:
        table.add_column(title, justify="right")
    for target, result in results.items():
        for i, (name, metrics) in enumerate(result.metrics.items()):
            table.add_row(
                target if i == 0 else "",
                f"model ({result.model.family})" if name == MODEL else name,
                *[_fmt(metrics[key]) for key, _ in SUMMARY_METRICS],
            )
    return table


def promotion_table(decision: PromotionDecision) -> Table:
    """The gate's figures, per target."""
    table = Table(title="promotion gate (challenger's validation rows)", box=box.SIMPLE_HEAD)
    for col in ("target", "metric", "chall.", "champ.", "gain", "interval", "ROC", "PR", "base"):
        table.add_column(col, justify="left" if col in ("target", "metric") else "right")
    table.add_column("pass")
    for g in decision.gates:
        gain = g.gain
        interval = (
            f"{gain.low:+.4f} to {gain.high:+.4f}" if gain is not None and gain.has_interval else ""
        )
        table.add_row(
            g.target,
            g.metric,
            _fmt(g.challenger),
            _fmt(g.champion),
            "" if gain is None else f"{gain.gain:+.4f}",
            interval,
            _fmt(g.roc_auc),
            _fmt(g.pr_auc),
            _fmt(g.base_rate),
            "yes" if g.passed else "[red]no[/]",
        )
    return table


def print_promotion(decision: PromotionDecision) -> None:
    """The gate's table, when the gate ran (not when the challenger already was champion)."""
    if decision.gates:
        console().print(promotion_table(decision))


def print_training(result: TrainingResult) -> None:
    """The validation summary, then the promotion gate's figures when it ran."""
    console().print(summary_table(result.targets))
    if result.promotion is not None:
        print_promotion(result.promotion)


def _train(config: Path, promote: bool, metrics_out: Path | None) -> None:
    settings = load_config(config)
    result = run_training(
        settings,
        promote=promote,
        metrics_out=metrics_out,
        feedback=read_store(settings.data.feedback),
        account_trainer=train_accounts,
    )
    print_training(result)


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
        print_promotion(run_promotion(load_config(config)))

    run_step(body)


class Engine(StrEnum):
    """Where `leadscore score` scores the leads (`score.engine`)."""

    local = "local"
    spark = "spark"


class ChunkProgress:
    """`run_scoring`'s progress callback: a bar on a terminal (from the first chunk on), a plain
    line per chunk otherwise (cron, pipes)."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.bar: Progress | None = None
        self.task = None
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        if not self.out.is_terminal:
            self.out.print(f"scored {done:,}/{total:,} leads")
            return
        if self.bar is None:
            columns = (
                "scoring and explaining",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            self.bar = Progress(*columns, console=self.out, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("score", total=total)
        self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        """Take the bar off the terminal, if one is shown."""
        if self.bar is not None:
            self.bar.stop()

    def finish(self) -> None:
        """After a bar: the final count as a line that stays."""
        if self.bar is not None:
            self.out.print(f"scored {self.total:,}/{self.total:,} leads")


@contextlib.contextmanager
def chunk_progress(out: Console) -> Iterator[ChunkProgress]:
    """A scoring progress callback whose bar is taken down however scoring ends."""
    progress = ChunkProgress(out)
    try:
        yield progress
    finally:
        progress.stop()
    progress.finish()


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
    engine: Annotated[
        Engine | None,
        typer.Option(help="Where to score: this machine or Spark (default: score.engine)."),
    ] = None,
) -> None:
    """Score every open lead at the as-of date; write scores, reasons and reports to OUT.

    --leads and --activities may be files (CSV, Parquet) or, with --engine spark, table names.
    """

    def body() -> None:
        try:
            when = pd.Timestamp(as_of)
        except ValueError:
            when = pd.NaT
        if pd.isna(when):
            raise UsageError(f"--as-of: not a date (YYYY-MM-DD): {as_of!r}")
        settings = load_config(config)
        chosen = engine.value if engine is not None else settings.score.engine
        scorer = spark_scorer() if chosen == "spark" else None
        out_console = console()
        with chunk_progress(out_console) as progress:
            result = run_scoring(
                settings,
                when,
                out,
                leads_path=leads,
                activities_path=activities,
                model_uri=model,
                progress=progress,
                scorer=scorer,
            )
        grades = ", ".join(f"{g}: {n:,}" for g, n in result.grade_counts.items())
        out_console.print(
            f"scored {result.n_scored:,} open leads ({result.n_skipped:,} skipped), "
            f"{result.n_explore:,} marked explore; grades {grades}"
        )
        for name, path in result.paths.items():
            out_console.print(f"  {name}: {path}")

    run_step(body)


BACKTEST_HEADERS = ("grade", "leads", "converted", "rate", "95% interval", "expected", "share")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def backtest_table(card: dict) -> Table:
    """One cohort and target: a row per grade (rate, interval, expected, share of conversions)."""
    status = "matured" if card["matured"] else f"partial ({card['observed_share']:.0%})"
    auc = "-" if card["roc_auc"] is None else f"{card['roc_auc']:.3f}"
    table = Table(
        title=f"{card['as_of']} {card['target']} within {card['window_days']} days: "
        f"{card['n']:,} leads, {_pct(card['rate'])} converted, ROC AUC {auc}, {status}",
        box=box.SIMPLE,
        title_justify="left",
    )
    for header in (*BACKTEST_HEADERS, "lift"):
        table.add_column(header, justify="left" if header == "grade" else "right")
    for grade, row in card["grades"].items():
        interval = "-" if row["rate_low"] is None else f"{_pct(row['rate_low'])}-"
        interval += "" if row["rate_high"] is None else _pct(row["rate_high"])
        table.add_row(
            grade,
            f"{row['n']:,}",
            f"{row['converted']:,}",
            _pct(row["rate"]),
            interval,
            _pct(row["expected_rate"]),
            _pct(row["share_of_conversions"]),
            "-" if row["lift"] is None else f"{row['lift']:.2f}x",
        )
    return table


def print_backtest(result: BacktestResult) -> None:
    """Per cohort and target its table and notes; what was not backtested; the files."""
    out = console()
    for card in result.cards:
        out.print(backtest_table(card))
        for note in card["notes"]:
            out.print(f"  note: {note}")
    for skipped in result.skipped:
        out.print(f"not backtested: {skipped['as_of']} {skipped['target']}: {skipped['reason']}")
    for name, path in result.paths.items():
        out.print(f"  {name}: {path}")
    if result.run_id:
        out.print(f"  MLflow run: {result.run_id}")


@app.command()
def backtest(
    scores: Annotated[
        list[Path],
        typer.Option(
            "--scores",
            help="Scoring output or score history folder; more folders may follow it.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder for backtest.json and backtest.html.")],
    more: Annotated[
        list[Path] | None, typer.Argument(help="More scores folders.", show_default=False)
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """How earlier scores turned out: per grade, realized against expected rates, once the
    outcomes are known (`--scores DIR [DIR ...]`)."""

    def body() -> None:
        print_backtest(run_backtest(load_config(config), [*scores, *(more or [])], out))

    run_step(body)
