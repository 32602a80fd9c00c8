"""What a user plans with: the progress bar instead of the per-step lines, durations for humans, and a quiet
start-up (the start block, rate lines and per-run TensorBoard folder: tests/test_cogan.py's resume test)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import config as C, runner, train
from tests.conftest import ROOT, train_config, write_fake_dataset


def fake_domains(n=64):
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


# The start block, the rate lines and the per-run TensorBoard folder are checked on test_cogan's resume runs
# (assert_progress_lines), which train and resume anyway.


def test_progress_bar_replaces_the_per_step_lines(tmp_path, capsys):
    logs = []
    cfg = train_config(tmp_path, batch_size=8, max_steps=3, log_every=1, progress="bar")
    runner.run(C.CoganConfig(), cfg, arrays=fake_domains(), log=logs.append)
    assert not [line for line in logs if line.startswith("Epoch:") or line.startswith(" [*] step ")]
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert re.search(r"100%\|.*\| 3/3 \[.*step.*d_loss=\d+\.\d{4}, g_loss=\d+\.\d{4}\]", bar), bar[-500:]


def test_durations_for_humans():
    assert train._duration(42.4) == "42 s"
    assert train._duration(600) == "10 min"
    assert train._duration(3 * 3600 + 7 * 60 + 20) == "3 h 07 min"


# The second case only shows TensorFlow's own lines coming through when asked for: slow, to keep the default run short.
@pytest.mark.parametrize("env_level, quiet", [(None, True), pytest.param("0", False, marks=pytest.mark.slow)],
                         ids=["default", "TF_CPP_MIN_LOG_LEVEL=0"])
def test_tensorflow_start_up_lines_hidden_unless_asked_for(tmp_path, env_level, quiet):
    """A run (TensorFlow started, devices probed, the model built; no step) prints only the program's own lines
    on stderr, unless the user sets TF_CPP_MIN_LOG_LEVEL (then TensorFlow's own start-up lines, e.g. its oneDNN
    notice, come through)."""
    data_dir = write_fake_dataset(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--is_train", "True", "--batch_size", "8",
                        "--max_steps", "0", "--data_dir", data_dir], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    native = [line for line in r.stderr.splitlines() if re.match(r"[IWE]\d{4} ", line) or "absl::InitializeLog" in line]
    assert (native == []) == quiet, r.stderr[-2000:]
