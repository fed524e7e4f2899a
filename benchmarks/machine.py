"""What every benchmark records: the machine it ran on, and where its figures go."""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
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


# A wrapper interpreter that runs the measured child and reads its peak resident set with
# RUSAGE_CHILDREN (the child's own peak: a child started from a big parent by vfork/exec would
# otherwise inherit the parent's).
MEASURE = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"returncode": proc.returncode, "peak_kib": peak, "stdout": proc.stdout}))
"""


def child_env() -> dict[str, str]:
    """The environment for benchmark children: MLflow telemetry off unless set."""
    return {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
    }


def last_json(stdout: str) -> dict:
    """The JSON object a benchmark child prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_measured(child: list[str], cwd: Path, what: str) -> tuple[dict, int]:
    """Run `child` (a command) under the MEASURE wrapper; return the JSON it printed last and
    its peak resident set in KiB. `what` names the run in the error raised if it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *child],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=child_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark of {what} failed:\n{proc.stderr[-5000:]}")
    measured = last_json(proc.stdout)
    if measured["returncode"] != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-5000:]}")
    return last_json(measured["stdout"]), measured["peak_kib"]
