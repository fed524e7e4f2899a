"""What every benchmark shares: the machine it ran on, where its figures go, and how its child
programs run in fresh interpreters.

A benchmark's child programs are plain functions in its own module, started as
`python benchmarks/bench_x.py child NAME '{"json": "keyword arguments"}'` (`child_command`);
the script's `__main__` hands such a command line to `run_child` (`entry`), which prints the
function's result as the last line of JSON. `run_measured` runs a child under this module's
`measure` wrapper (`python benchmarks/machine.py measure CMD...`) to get its peak memory.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "benchmarks.md"
CHILD = "child"  # first argument of a benchmark script run as a child program


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


def measure(command: list[str]) -> int:
    """Run `command` and print its return code, peak resident set (KiB) and stdout as JSON.

    The peak is read with RUSAGE_CHILDREN in this small wrapper process: the child's own peak (a
    child started from a big parent by vfork/exec would otherwise inherit the parent's).
    """
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"returncode": proc.returncode, "peak_kib": peak, "stdout": proc.stdout}))
    return 0


def child_command(script: str | Path, name: str, **kwargs) -> list[str]:
    """The command running child program `name` of benchmark `script` (its `__file__`) with
    `kwargs` (JSON-able: paths are passed as text) in a fresh interpreter."""
    args = json.dumps(kwargs, default=str)
    return [sys.executable, str(Path(script).resolve()), CHILD, name, args]


def run_child(children: dict[str, Callable[..., dict | None]], argv: list[str]) -> int:
    """Run `children[name](**kwargs)` for argv `[CHILD, name, kwargs-as-JSON]`; print its
    result as the last line of JSON (`null` for None)."""
    _, name, args = argv
    result = children[name](**json.loads(args))
    print(json.dumps(result), flush=True)
    return 0


def entry(main: Callable[[list[str]], int], children: dict[str, Callable[..., dict | None]]) -> int:
    """A benchmark script's `__main__`: a child program when argv starts with CHILD, else main."""
    argv = sys.argv[1:]
    if argv[:1] == [CHILD]:
        return run_child(children, argv)
    return main(argv)


@contextlib.contextmanager
def captured_log(name: str = "leadscore") -> Iterator[io.StringIO]:
    """Collect the INFO messages of logger `name` (and its children), one per line, while the
    block runs; yield the buffer they are written to."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def child_env() -> dict[str, str]:
    """The environment for benchmark children: MLflow telemetry off unless set."""
    return {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
    }


def last_json(stdout: str) -> dict | None:
    """The JSON object a benchmark child prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_child_process(command: list[str], cwd: Path, what: str) -> dict | None:
    """Run `command` (a child program); return the JSON it printed last. `what` names the run in
    the error raised if it fails."""
    proc = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=cwd, env=child_env()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-5000:]}")
    return last_json(proc.stdout)


def run_measured(child: list[str], cwd: Path, what: str) -> tuple[dict, int]:
    """Run `child` (a command) under the `measure` wrapper; return the JSON it printed last and
    its peak resident set in KiB. `what` names the run in the error raised if it fails."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "measure", *child],
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


if __name__ == "__main__":
    if sys.argv[1:2] != ["measure"]:
        sys.exit("usage: machine.py measure COMMAND...")
    raise SystemExit(measure(sys.argv[2:]))
