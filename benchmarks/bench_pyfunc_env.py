"""Time the logged model in a truly fresh environment: built from its own requirements.txt only.

A model is trained and promoted first (`train_child`, in its own interpreter: `write_sample` with
`--train-leads` leads, seed 0, `sample_settings` with a private SQLite MLflow store,
`run_training(..., promote=True)`, which exports the champion to a plain model folder), and
`--rows` lead rows open at the export date are written as the model's input (`rows.json`: the
user's column names and an `events` list per lead, `data.model_input.model_input_rows`) with
the model's own output for them in that interpreter (`expected.json`).

Then, timed step by step: `python -m venv` (with pip), `pip install -r requirements.txt` of the
exported model (pip's cache and the machine's index as configured; leadscore itself is not
installed: the model carries it as code), `mlflow.pyfunc.load_model` + `predict` in that
environment (checked: `import leadscore` resolves to the model's code folder; the scores equal
the training interpreter's), and `mlflow models serve --env-manager local` from that
environment: time until /ping answers, then one POST of the rows to /invocations (checked
against the same scores).

Prints the timings and appends a dated section to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_pyfunc_env.py
    .venv/bin/python benchmarks/bench_pyfunc_env.py --no-append --keep /tmp/pyfunc-env
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pandas as pd
from machine import (  # benchmarks/machine.py, beside this script
    REPO,
    append_section,
    child_command,
    child_env,
    entry,
    machine,
    machine_line,
    run_child_process,
)

from leadscore.data.contract import load_lead_data
from leadscore.data.model_input import model_input_rows
from leadscore.data.sample import sample_settings, write_sample
from leadscore.data.snapshots import scoring_snapshots
from leadscore.modeling.registry import mlflow_module
from leadscore.modeling.train import run_training

AS_OF = "2026-11-01"
SERVE_TIMEOUT_S = 300
CHECKED = ("lead_id", "p_meeting", "p_won", "score", "grade", "reason_pos_1", "reason_neg_1")


def train_child(work: str, n_leads: int, n_rows: int) -> dict:
    """Train and promote a model on a sample; write rows.json and expected.json beside it."""
    root = Path(work)
    write_sample(root / "sample", n_leads=n_leads, seed=0)
    settings = sample_settings(
        root / "sample",
        f"sqlite:///{root}/mlruns.db",
        mlflow={"export_dir": str(root / "champion"), "experiment": "bench-pyfunc"},
        data={"feedback": str(root / "feedback")},
    )
    started = time.perf_counter()
    result = run_training(settings, promote=True)
    train_s = time.perf_counter() - started
    data = load_lead_data(settings)
    open_leads = scoring_snapshots(data.leads, pd.Timestamp(AS_OF))[0].head(n_rows)
    rows = model_input_rows(open_leads, data.activities, settings, result.bundle.spec, AS_OF)
    (root / "rows.json").write_text(rows.to_json(orient="records"), encoding="utf-8")
    model = mlflow_module().pyfunc.load_model(str(root / "champion"))
    expected = model.predict(rows, params={"as_of": AS_OF})
    (root / "expected.json").write_text(expected.to_json(orient="records"), encoding="utf-8")
    return {"train_s": round(train_s, 1), "rows": len(rows), "model": str(root / "champion")}


PREDICT = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import mlflow, pandas as pd
    t1 = time.perf_counter()
    model = mlflow.pyfunc.load_model(sys.argv[1])
    t2 = time.perf_counter()
    rows = pd.DataFrame.from_records(json.load(open("rows.json")))
    out = model.predict(rows, params={"as_of": sys.argv[2]})
    t3 = time.perf_counter()
    out.to_json("fresh.json", orient="records")
    import leadscore
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2,
                      "leadscore": leadscore.__file__}))
    """
)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Run `command`; its seconds and stdout (a RuntimeError with its stderr if it fails)."""
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{proc.stderr[-5000:]}")
    return time.perf_counter() - started, proc.stdout


def same_scores(got: list[dict], expected: list[dict]) -> bool:
    """The checked columns agree (probabilities to 1e-9)."""
    if len(got) != len(expected):
        return False
    for a, b in zip(got, expected, strict=True):
        for col in CHECKED:
            x, y = a.get(col), b.get(col)
            if isinstance(y, float) and isinstance(x, float):
                if abs(x - y) > 1e-9:
                    return False
            elif x != y:
                return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def serve(python: Path, model: str, work: Path, env: dict[str, str]) -> dict:
    """`mlflow models serve --env-manager local` from the fresh environment: seconds to /ping,
    seconds of one POST of the rows, and whether its scores equal the expected ones."""
    port = free_port()
    mlflow_cli = python.parent / "mlflow"
    env = {**env, "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}"}  # its uvicorn
    command = [str(mlflow_cli), "models", "serve", "--env-manager", "local", "-m", model]
    command += ["-p", str(port), "-h", "127.0.0.1"]
    log = (work / "serve.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                text = (work / "serve.log").read_text()
                raise RuntimeError(f"mlflow models serve exited:\n{text[-5000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.perf_counter() - started > SERVE_TIMEOUT_S:
                    raise RuntimeError("mlflow models serve did not answer /ping") from None
                time.sleep(0.5)
        ready = time.perf_counter() - started
        rows = json.loads((work / "rows.json").read_text())
        body = {"dataframe_records": rows, "params": {"as_of": AS_OF}}
        t0 = time.perf_counter()
        answer = post(f"http://127.0.0.1:{port}/invocations", body)
        request_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    expected = json.loads((work / "expected.json").read_text())
    return {
        "ready_s": ready,
        "request_s": request_s,
        "same": same_scores(answer["predictions"], expected),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-leads", type=int, default=3_000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-pyfunc-"))
    trained = run_child_process(
        child_command(__file__, "train", work=str(work), n_leads=args.train_leads,
                      n_rows=args.rows),
        REPO,
        "training",
    )  # fmt: skip
    env = {k: v for k, v in child_env().items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    venv = work / "fresh"
    seconds: dict[str, float] = {}
    seconds["venv"], _ = timed([sys.executable, "-m", "venv", str(venv)], work, env)
    python = venv / "bin" / "python"
    requirements = Path(trained["model"]) / "requirements.txt"
    seconds["pip_install"], _ = timed(
        [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], work, env
    )
    probe = subprocess.run(
        [str(python), "-c", "import leadscore"], cwd=work, env=env, capture_output=True, check=False
    )
    assert probe.returncode != 0, "leadscore must not be installed in the fresh environment"
    seconds["load_predict"], out = timed(
        [str(python), "-c", PREDICT, trained["model"], AS_OF], work, env
    )
    loaded = json.loads(out.strip().splitlines()[-1])
    fresh = json.loads((work / "fresh.json").read_text())
    expected = json.loads((work / "expected.json").read_text())
    served = serve(python, trained["model"], work, env)
    figures = {
        "python -m venv": seconds["venv"],
        "pip install -r requirements.txt": seconds["pip_install"],
        "python: import mlflow": loaded["import_s"],
        "mlflow.pyfunc.load_model": loaded["load_s"],
        f"predict ({trained['rows']} leads, events)": loaded["predict_s"],
        "mlflow models serve: until /ping": served["ready_s"],
        f"POST /invocations ({trained['rows']} leads)": served["request_s"],
    }
    code = str(Path(trained["model"]) / "code")
    checks = {
        "leadscore from the model's code": loaded["leadscore"].startswith(code),
        "pyfunc scores equal the training interpreter's": same_scores(fresh, expected),
        "served scores equal them": served["same"],
    }  # fmt: skip
    for name, value in figures.items():
        print(f"{name:45s} {value:8.1f} s")
    for name, ok in checks.items():
        print(f"{name:45s} {'yes' if ok else 'NO'}")
    packages = len(requirements.read_text().split())
    if not args.no_append:
        lines = [
            f"\n## Logged model in a fresh environment ({datetime.now():%Y-%m-%d})\n",
            f"`benchmarks/bench_pyfunc_env.py`: a model trained on {args.train_leads:,} sample "
            f"leads, exported; a new virtual environment with only the model's requirements.txt "
            f"({packages} pinned packages, leadscore not among them: the model carries it as "
            "code); pip's cache and the machine's package index as configured.\n",
            machine_line(machine("mlflow", "pandas")) + "\n",
            "| step | seconds |\n|---|---:|",
            *(f"| {name} | {value:.1f} |" for name, value in figures.items()),
            "",
            "Checks: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()),
            "",
        ]
        append_section("\n".join(lines) + "\n")
    return 0 if all(checks.values()) else 1


CHILDREN = {"train": train_child}

if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    raise SystemExit(entry(main, CHILDREN))
