"""The benchmark scripts import (so an API they use cannot vanish unseen) and their child
programs run through `machine.child_command` / `run_measured`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))


@pytest.fixture
def bench(monkeypatch):
    """Import a benchmark module by name, as its script sees its folder (`from machine ...`)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports(bench, name):
    module = bench(name)
    assert callable(module.main)
    for child in getattr(module, "CHILDREN", {}).values():
        assert callable(child)


def test_bench_score_times_functions_that_exist(bench):
    for owner, name, only_from in bench("bench_score").STOPWATCHES:
        assert callable(getattr(owner, name)), f"{owner.__name__}.{name}"
        if only_from is not None:
            assert callable(getattr(owner, only_from)), f"{owner.__name__}.{only_from}"


def test_child_program_runs_measured_in_its_own_interpreter(bench, tmp_path):
    machine, bench_sample = bench("machine"), bench("bench_sample")
    command = machine.child_command(bench_sample.__file__, "sample", n_leads=300, scratch=tmp_path)
    assert command[:3] == [sys.executable, str(BENCHMARKS / "bench_sample.py"), machine.CHILD]

    row, peak_kib = machine.run_measured(command, tmp_path, "the sample child")

    assert row["n_leads"] == 300 and row["events"] > 0
    assert 0 < row["peak_kib"] <= peak_kib


def test_expected_auc_of_the_truth_is_the_best_possible(bench):
    expected_auc = bench("bench_quality").expected_auc
    rng = np.random.default_rng(0)
    p_true = 1 / (1 + np.exp(-rng.normal(-2, 1.5, 4_000)))
    best = expected_auc(p_true, p_true)
    noisy = p_true * np.exp(rng.normal(0, 0.5, len(p_true)))
    assert 0.5 < expected_auc(noisy, p_true) < best
    assert expected_auc(np.full(len(p_true), 0.1), p_true) == pytest.approx(0.5)
    # the mean over outcomes drawn from the truth
    draws = [roc_auc_score(rng.random(len(p_true)) < p_true, noisy) for _ in range(200)]
    assert np.mean(draws) == pytest.approx(expected_auc(noisy, p_true), abs=0.005)
