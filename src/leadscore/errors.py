"""Every error leadscore raises on purpose, in one place.

`LeadscoreError` is the base. The CLI maps its two families onto exit codes: a bad config or a
bad command-line value (`ConfigError`, `UsageError`) exits 2; bad input data (`InputError`:
`DataFileError`, `ContractError`, `FeedbackError`, `BacktestError`) or a step refused on purpose
(`RefusedError`: `TrainingError`, `RegistryError`, `ScoringError`) exits 1. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS_PER_KIND = 20


class LeadscoreError(ValueError):
    """Base of every error leadscore raises on purpose; the message says what and where."""


class ConfigError(LeadscoreError):
    """A config file that cannot be used; the message names the file and the key."""


class UsageError(LeadscoreError):
    """A command-line value that cannot be used (exit 2, like a bad config)."""


class InputError(LeadscoreError):
    """Input data that cannot be used (exit 1)."""


class DataFileError(InputError):
    """An input file that cannot be read; the message names the file."""


class FeedbackError(InputError):
    """The feedback store cannot be used (an unreadable part, a part that would be overwritten)."""


class BacktestError(InputError):
    """Scores a backtest cannot use: a folder without scores, no target or lead to compare."""


class RefusedError(LeadscoreError):
    """A step refused on purpose: too little data, no model to score with, ... (exit 1)."""


class TrainingError(RefusedError):
    """Training refused on purpose: too little data for a target, an empty held-out class."""


class RegistryError(RefusedError):
    """A registry step that cannot be done: no challenger, an unknown model, ..."""


class ScoringError(RefusedError):
    """Scoring cannot go on (no model, unwritable output, ...); the message says why."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what is wrong."""

    file: str
    message: str
    column: str | None = None
    row: int | None = None
    value: object = None
    lead_id: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        text = ", ".join(where) + f": {self.message}"
        if self.value is not None:
            text += f" (value: {self.value!r})"
        return text


def summarize(problems: list[Problem], per_kind: int = MAX_PROBLEMS_PER_KIND) -> list[str]:
    """Problems as lines, at most `per_kind` per (file, column, message), then a count."""
    seen: dict[tuple, int] = {}
    lines: list[str] = []
    for p in problems:
        kind = (p.file, p.column, p.message)
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= per_kind:
            lines.append(str(p))
    for (file, column, message), count in seen.items():
        if count > per_kind:
            where = f"{file}, column '{column}'" if column else file
            lines.append(f"{where}: {message}: {count - per_kind} more rows")
    return lines


class ContractError(InputError):
    """Input data that breaks the contract; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in the input data:"]
        lines += [f"  - {line}" for line in summarize(problems)]
        super().__init__("\n".join(lines))
