"""cogan_tf/bench/device_rows.py, ``python -m cogan_tf.bench --device_rows``: float32 matmuls timed by throughput,
with TF32 off and on, and the device's memory (here on the CPU)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_device_rows_time_matmuls_by_throughput_with_tf32_off_and_on(tmp_path):
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--device_rows", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [(row["n"], row["tf32"], row["calls"]) for row in result["rows"]] == [
        (256, False, 5), (256, True, 5), (512, False, 5), (512, True, 5)]
    assert all(row["tflops"] > 0 for row in result["rows"])
    assert result["device"].startswith("CPU (") and result["memory_total_bytes"] > 0
    assert "TF32" in r.stdout and "memory:" in r.stdout
