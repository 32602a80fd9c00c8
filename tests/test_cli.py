"""cogan_tf/cli.py, what the entry scripts and the tools share: the original's ``--flag True`` spelling of boolean
flags folded into absl's ``--flag=True`` (a word after a boolean flag that is not a truth value refused in one
line), several paths after one list flag folded into absl's comma-separated list, and one-line errors."""

import os
import subprocess
import sys

import pytest
from absl import flags

from cogan_tf import cli
from cogan_tf.evaluate.__main__ import LIST_FLAGS
from tests.conftest import ROOT, without_tensorflow


def test_argv_folding_of_path_lists():
    argv = ["prog", "--grids", "t1.png", "b1.png", "t2.png", "b2.png", "--out", "r.json", "--compare", "a", "b"]
    assert cli.fold_list_args(argv, LIST_FLAGS) == ["prog", "--grids=t1.png,b1.png,t2.png,b2.png", "--out", "r.json",
                                       "--compare=a,b"]


def test_original_style_booleans_are_folded_and_other_words_refused():
    fv = flags.FlagValues()
    flags.DEFINE_boolean("is_train", False, "", flag_values=fv)
    flags.DEFINE_integer("epoch", 25, "", flag_values=fv)
    argv = ["main.py", "--is_train", "True", "--epoch", "1", "--is_train", "f", "--is_train"]
    # Only a boolean flag takes the next word; --epoch 1 stays for absl to read.
    assert cli.fold_bool_args(argv, fv) == ["main.py", "--is_train=True", "--epoch", "1", "--is_train=f", "--is_train"]
    assert cli.bad_bool_value(argv[1:], fv) is None
    assert cli.bad_bool_value(["--is_train", "maybe"], fv) == "--is_train maybe: expected True or False"
    assert cli.bad_bool_value(["--epoch", "maybe"], fv) is None  # not a boolean: absl refuses it itself


@pytest.mark.parametrize("program, args, message", [
    ("main.py", ["--epoch", "x"], "error: flag --epoch=x: invalid literal for int() with base 10: 'x' (see --help)"),
    ("main.py", ["--nope"], "error: Unknown command line flag 'nope' (see --help)"),
    ("download.py", ["--timeout", "x"], "error: flag --timeout=x: could not convert string to float: 'x' (see --help)"),
])
def test_absl_flag_errors_are_one_line_with_status_2(tmp_path, program, args, message):
    """absl's own refusals (a value of the wrong type, an unknown flag) read as the programs' own: one line,
    status 2, before TensorFlow starts (absl prints two lines and exits 1)."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, program), *args], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=120, env=without_tensorflow(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [message], r.stderr[-2000:]
