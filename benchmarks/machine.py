"""What every benchmark records: the machine it ran on, and where its figures go."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "benchmarks.md"


def machine(*packages: str) -> dict[str, str]:
    """Cores, memory, CPU, Python and the versions of `packages` (import names)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {
        "cores": str(os.cpu_count()),
        "memory": f"{mem:.1f} GiB",
        "cpu": cpu_name(),
        "python": platform.python_version(),
    }
    for name in packages:
        info[name] = importlib.import_module(name).__version__
    return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(info: dict[str, str]) -> str:
    """One line for the report: 'Machine: cores 2, memory 23.5 GiB, ...'."""
    return "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + "."


def append_section(text: str) -> Path:
    """Append a section to docs/benchmarks.md (created if missing)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    if not REPORT.exists():
        REPORT.write_text("# Benchmarks\n", encoding="utf-8")
    with REPORT.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return REPORT
