"""cogan_tf/errors.py, every error the package raises on purpose: a leaf (importable with nothing else of the
package and without TensorFlow, so a program raises them before TensorFlow starts), each message one line - the
line a program prints, ``error: MESSAGE`` with exit 2 (a stop the user asked for: its line and its own status) -
and a library's failure told in one line by :func:`errors.first_line`."""

import subprocess
import sys

from cogan_tf import errors
from tests.conftest import ROOT, without_tensorflow

ERRORS = ["ClassifierError", "DataError", "DownloadError", "FileFailed", "GridError", "RunStopped", "SourceFailed",
          "UsageError"]

IMPORT = """
import sys
from cogan_tf import errors
print(sorted(n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)))
print(sorted(m for m in sys.modules if m.startswith("cogan_tf")))
"""


def test_every_error_imports_alone_without_tensorflow(tmp_path):
    r = subprocess.run([sys.executable, "-c", IMPORT], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env=without_tensorflow(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == [str(ERRORS), "['cogan_tf', 'cogan_tf.errors']"]
    assert issubclass(errors.DownloadError, errors.DataError)  # a failed download is a data problem to a caller


PROGRAM = """
from cogan_tf import cli
from cogan_tf.errors import DataError, RunStopped, UsageError


def main(argv):
    if argv[1] == "usage":
        raise UsageError("--epoch=-1: must be at least 1")
    if argv[1] == "data":
        raise DataError("data/mnist/train-images-idx3-ubyte: not found; run `python download.py mnist` first")
    raise RunStopped("stopped by SIGTERM at step 7; its checkpoint is saved", status=143, requested=True)


cli.run(main, plain_args=True)
"""


def test_a_program_prints_an_error_as_its_one_line(tmp_path):
    env = without_tensorflow(tmp_path)
    said = {}
    for kind in ("usage", "data", "stopped"):
        r = subprocess.run([sys.executable, "-c", PROGRAM, kind], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, env=env)
        said[kind] = (r.returncode, r.stderr, r.stdout)
    assert said == {
        "usage": (2, "error: --epoch=-1: must be at least 1\n", ""),
        "data": (2, "error: data/mnist/train-images-idx3-ubyte: not found; run `python download.py mnist` first\n", ""),
        "stopped": (143, "stopped by SIGTERM at step 7; its checkpoint is saved\n", "")}


def test_first_line_tells_a_library_failure_in_one_line():
    e = RuntimeError("{{function_node __inference_step_123}} Input to reshape is a tensor with 10 values\n"
                     "\t [[{{node Reshape}}]]")
    assert errors.first_line(e) == "RuntimeError: Input to reshape is a tensor with 10 values"
    assert errors.first_line(ValueError("")) == "ValueError"
    assert errors.first_line(OSError("x" * 500)) == "OSError: " + "x" * 200
