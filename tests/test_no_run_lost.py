"""No run lost (issue 11): output directories checked up front."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def main_py(tmp_path, *args, **popen):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.parametrize("flag, is_train", [("checkpoint_dir", "True"), ("sample_dir", "True"), ("log_dir", "True"),
                                            ("export_dir", "True"), ("evaluate_dir", "False"), ("export_dir", "False")])
def test_unwritable_output_directory_refused_before_tensorflow(tmp_path, flag, is_train):
    (tmp_path / "afile").write_text("x")
    p = main_py(tmp_path, "--is_train", is_train, f"--{flag}", "afile/sub", "--data_dir", str(tmp_path / "nodata"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2
    where = "afile/sub/mnist_128_28" if flag == "checkpoint_dir" else "afile/sub"
    assert err.strip().splitlines() == [
        f"error: --{flag}=afile/sub: cannot write into {where} (afile is a file); pick another directory"], err
