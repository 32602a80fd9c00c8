"""A quiet start-up: a run prints only the program's own lines unless the user asks for TensorFlow's. (The progress
bar and durations for humans: tests/test_train.py; the start block, rate lines and per-run TensorBoard folder:
tests/test_cogan.py's resume test.)"""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_fake_dataset


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
