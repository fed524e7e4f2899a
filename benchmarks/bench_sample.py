"""Time `leadscore.data.sample.write_sample` and measure its peak memory at several sizes.

Each size runs in a fresh subprocess, so the peak resident set (`ru_maxrss`) belongs to that size
alone. Prints a table and appends a dated section to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_sample.py                 # 100k and 1M leads
    .venv/bin/python benchmarks/bench_sample.py --sizes 20000   # other sizes
    .venv/bin/python benchmarks/bench_sample.py --no-append     # print only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from machine import REPO, append_section, machine  # benchmarks/machine.py, beside this script

DEFAULT_SIZES = (100_000, 1_000_000)

CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from leadscore.data.sample import write_sample

n = int(sys.argv[1])
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as tmp:
    start = time.perf_counter()
    paths = write_sample(Path(tmp), n_leads=n, seed=0)
    wall = time.perf_counter() - start
    sizes = {k: p.stat().st_size for k, p in paths.items()}
    with open(paths["activities"], "rb") as fh:
        events = sum(buf.count(b"\\n") for buf in iter(lambda: fh.read(1 << 24), b"")) - 1
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n_leads": n, "wall_s": wall, "peak_kib": peak_kib, "events": events,
                  "leads_bytes": sizes["leads"], "activities_bytes": sizes["activities"]}))
"""


def run_size(n_leads: int, scratch: Path) -> dict:
    """Run `write_sample(n_leads)` in a fresh interpreter and return its measurements."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n_leads), str(scratch)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark at {n_leads:,} leads failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


if __name__ == "__main__":
    raise SystemExit(main())
