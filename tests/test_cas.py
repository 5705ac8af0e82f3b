"""cgan-eval --cas: train on generated digits, test on real ones, beside real training data."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_cas_row_json_keys_and_a_cached_real_baseline(trained_run, tiny_data_dir, tmp_path,
                                                      run_cli):
    report = tmp_path / "q.json"
    args = ("eval", "--outdir", trained_run, "--n-per-class", 20, "--cas", "--json", report,
            "--data-dir", tiny_data_dir)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    cas = json.loads(report.read_text())["cas"]
    assert 0 <= cas["cas"] <= 1 and 0 <= cas["cas_real"] <= 1
    assert cas["cas_gap"] == pytest.approx(100 * (cas["cas_real"] - cas["cas"]), abs=0.01)
    assert cas["cas_real"] > 0.5  # the made-up shapes are easy to learn from 200 real ones
    row = next(line for line in first.stdout.splitlines() if line.startswith("CAS: trained"))
    assert row.split()[-2:] == [f"{100 * cas['cas']:.2f}%", f"{100 * cas['cas_real']:.2f}%"]
    assert "training the same recipe on 200 real images" in first.stdout
    again = run_cli(*args)  # the real baseline depends on the data, N and the recipe only
    assert again.returncode == 0 and "training the same recipe" not in again.stdout
    assert json.loads(report.read_text())["cas"]["cas_real"] == cas["cas_real"]
