"""``ferry demo`` end to end (quick training), through the real entry point."""

from __future__ import annotations

import re

from tests.cli.test_cli import ferry_cli


def test_demo_runs_end_to_end_with_no_differing_predictions(tmp_path):
    result = ferry_cli("demo", "--quick", "--output-dir", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rows = {m.group(1): m for m in re.finditer(r"^\s+(torch|ferry|onnxruntime)\s+([\d.]+)\s+(\d+)\s+(\S+)", out, re.M)}
    assert set(rows) == {"torch", "ferry", "onnxruntime"}
    assert all(int(m.group(3)) == 0 for m in rows.values())  # no differing predictions
    assert float(rows["ferry"].group(2)) > 0.85  # the CNN learned the digits
    assert "output shape [1, 1, 672, 672]" in out
    for name in ("digits_cnn.onnx", "digits_cnn.txt", "super_resolution.onnx", "super_resolution.txt"):
        assert (tmp_path / name).exists()
    assert str(tmp_path) in out.splitlines()[-1] or str(tmp_path) in out
    assert "training [" in result.stderr  # the progress bar
