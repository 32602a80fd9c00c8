"""tools/gpu_check.sh on a machine without a GPU: --dry_run prints every command it would run and exits 0;
a real run refuses in one line. (The bench's device rows it runs: tests/test_device_rows.py.)"""

import os
import subprocess

from tests.conftest import ROOT

SCRIPT = os.path.join(ROOT, "tools", "gpu_check.sh")


def test_dry_run_prints_the_whole_check_and_exits_0(tmp_path):
    out = tmp_path / "check.txt"
    r = subprocess.run(["bash", SCRIPT, "--dry_run", "--out", str(out)], capture_output=True, text=True, timeout=60,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    commands = [line[2:] for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert "nvidia-smi" in commands
    assert any(c.startswith("python -m cogan_tf.bench --device_rows") for c in commands)
    trained = [c for c in commands if c.startswith("python main.py --is_train True")]
    for model in ("cogan", "vanilla", "clustergan"):
        assert any(f"--model {model} " in c and "--max_steps 200 " in c for c in trained), model
    assert any("--deterministic" in c for c in trained) and any("--tf32" in c for c in trained)
    assert any("pytest" in c and "NVIDIA_TF32_OVERRIDE=0" in c for c in commands)  # equivalence tests in float32
    assert sum("ck_parts" in c for c in trained) == 2  # the resume: two parts against one whole run
    assert r.stdout.splitlines()[-1].endswith(f"a real run writes all of this to {out})")
    assert not out.exists()


def test_a_real_run_without_a_gpu_is_refused_in_one_line(tmp_path):
    r = subprocess.run(["bash", SCRIPT, "--out", str(tmp_path / "check.txt")], capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: TensorFlow sees no GPU here (install the CUDA extra: pip install "
                                             "-e '.[cuda]'); --dry_run shows the commands"]


