"""Fail on any file over 1 MB in the source folders (`make lint`), naming each one.

Checks the files git would take (tracked, plus untracked ones not ignored); outside a git
checkout, every file under the folders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("src", "docs", "configs", "tests", "notebooks")
LIMIT = 1_000_000  # bytes


def candidate_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *FOLDERS],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return [p for f in FOLDERS for p in (ROOT / f).rglob("*") if p.is_file()]
    return [ROOT / name for name in out.decode().split("\0") if name]


def main() -> int:
    big = [
        (p, size) for p in candidate_files() if p.is_file() and (size := p.stat().st_size) > LIMIT
    ]
    for path, size in sorted(big):
        print(f"{path.relative_to(ROOT)}: {size / 1e6:.1f} MB (limit 1 MB)", file=sys.stderr)
    if big:
        print(f"{len(big)} file(s) over 1 MB in {', '.join(FOLDERS)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
