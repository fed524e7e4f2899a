"""Time `leadscore.data.sample.write_sample` and measure its peak memory at several sizes.

Each size runs in a fresh interpreter (`sample_child`, this script run as a child program), so
the peak resident set (`ru_maxrss`) belongs to that size alone. Prints a table and appends a
dated section to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_sample.py                 # 100k and 1M leads
    .venv/bin/python benchmarks/bench_sample.py --sizes 20000   # other sizes
    .venv/bin/python benchmarks/bench_sample.py --no-append     # print only
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

from machine import (  # benchmarks/machine.py, beside this script
    REPO,
    append_section,
    child_command,
    entry,
    machine,
    run_child_process,
)

from leadscore.data.sample import write_sample

DEFAULT_SIZES = (100_000, 1_000_000)


def count_lines(path: Path) -> int:
    """Lines of a file, read in 16 MiB blocks."""
    with open(path, "rb") as fh:
        return sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 24), b""))


def sample_child(n_leads: int, scratch: str) -> dict:
    """Child program: time `write_sample(n_leads)` into a temporary folder under `scratch`;
    the sizes of its files, its event count and this process's peak resident set."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        start = time.perf_counter()
        paths = write_sample(Path(tmp), n_leads=n_leads, seed=0)
        wall = time.perf_counter() - start
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        events = count_lines(paths["activities"]) - 1
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n_leads": n_leads,
        "wall_s": wall,
        "peak_kib": peak_kib,
        "events": events,
        "leads_bytes": sizes["leads"],
        "activities_bytes": sizes["activities"],
    }


def run_size(n_leads: int, scratch: Path) -> dict:
    """Run `write_sample(n_leads)` in a fresh interpreter and return its measurements."""
    command = child_command(__file__, "sample", n_leads=n_leads, scratch=scratch)
    return run_child_process(command, REPO, f"benchmark at {n_leads:,} leads")


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    lines = [
        "| leads | events | wall time (s) | peak RSS (GiB) | leads.csv (MB) "
        "| activities.csv (MB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_leads']:,} | {r['events']:,} | {r['wall_s']:.1f} | "
            f"{r['peak_kib'] / 2**20:.2f} | {r['leads_bytes'] / 1e6:.0f} | "
            f"{r['activities_bytes'] / 1e6:.0f} |"
        )
    return "\n".join(lines)


def section(rows: list[dict], info: dict[str, str]) -> str:
    """The dated docs/benchmarks.md section for this run."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    spec = ", ".join(f"{k} {v}" for k, v in info.items())
    return (
        f"\n## Synthetic sample (`write_sample`), {stamp}\n\n"
        f"Machine: {spec}.\n"
        "Wall time of `write_sample(out_dir, n_leads, seed=0)` (generation plus both CSV files), "
        "peak resident memory of a fresh process per size.\n\n"
        f"{table(rows)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark sizes, print the table and append it to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--scratch", type=Path, default=None, help="where to write the files")
    parser.add_argument("--no-append", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    scratch = args.scratch or Path(os.environ.get("TMPDIR", "/tmp"))
    rows = []
    for n in args.sizes:
        row = run_size(n, scratch)
        rows.append(row)
        print(
            f"{n:>10,} leads: {row['wall_s']:6.1f} s, "
            f"peak {row['peak_kib'] / 2**20:.2f} GiB, {row['events']:,} events",
            flush=True,
        )
    info = machine("numpy", "pandas", "pyarrow")
    print()
    print(table(rows))
    if not args.no_append:
        print(f"\nappended to {append_section(section(rows, info)).relative_to(REPO)}")
    return 0


CHILDREN = {"sample": sample_child}

if __name__ == "__main__":
    raise SystemExit(entry(main, CHILDREN))
