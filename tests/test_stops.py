"""What stops a training run with a checkpoint of its step (cogan_tf/stops.py), as a user meets it: a
closed output pipe (``python main.py ... | head``, or the launcher that read the output killed) and
SIGHUP (a closed terminal), each in a real main.py process; and a signal the process was started to
ignore (nohup's SIGHUP) stays ignored."""

import os
import re
import signal
import subprocess
import sys

from cogan_tf import stops
from tests.conftest import ROOT, write_fake_dataset

ARGS = ("--batch_size", "16", "--train_size", "32", "--epoch", "1000", "--checkpoint_dir", "ck", "--log_every", "1")


def main_py(tmp_path, *args, **popen):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def saved_step(tmp_path, line):
    """The step of a stop line, checked against the checkpoint it names and the folder's state file."""
    m = re.fullmatch(r"(.*) after step (\d+): saved ck/mnist_16_28/CoGAN.model-(\d+); run the same command to resume",
                     line)
    assert m and int(m.group(3)) == int(m.group(2)) + 1, line
    state = (tmp_path / "ck" / "mnist_16_28" / "checkpoint").read_text().splitlines()[0]
    assert state == f'model_checkpoint_path: "CoGAN.model-{m.group(3)}"'
    return m.group(1), int(m.group(2))


def test_a_closed_output_pipe_stops_the_run_with_a_checkpoint_of_its_step(tmp_path):
    """As ``python main.py ... | head``: the reader goes away after the second step's line. The run used to
    die of BrokenPipeError at its next line, exit 1, with nothing of the steps since the last save."""
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    p = main_py(tmp_path, *ARGS, "--data_dir", data_dir)
    while not p.stdout.readline().startswith("Epoch: [ 0] [   1/"):
        pass
    p.stdout.close()  # what head does after its lines
    err = p.stderr.read()
    p.wait(timeout=300)
    assert p.returncode == 128 + signal.SIGPIPE, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
    what, step = saved_step(tmp_path, err.strip().splitlines()[-1])
    assert what == "stopped because its output closed (a closed pipe)"
    assert step >= 2  # the step whose line found the pipe closed, not the first save's


def test_sighup_stops_the_run_with_a_checkpoint_of_its_step(tmp_path):
    """A closed terminal or ssh session: SIGHUP gets what SIGTERM gets (it used to end the run at once,
    exit 129, no checkpoint of the step)."""
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    p = main_py(tmp_path, *ARGS, "--data_dir", data_dir)
    for line in p.stdout:
        if line.startswith("Epoch: [ 0] [   1/"):
            p.send_signal(signal.SIGHUP)
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signal.SIGHUP, err
    what, step = saved_step(tmp_path, err.strip().splitlines()[-1])
    assert what == "stopped by SIGHUP" and step >= 2


def test_a_signal_ignored_at_start_stays_ignored(tmp_path):
    """nohup starts a run with SIGHUP ignored: the run must not start catching it (it would then stop when
    the terminal closes, which is what nohup was for)."""
    script = ("import signal, sys; sys.path.insert(0, sys.argv[1]); from cogan_tf import stops\n"
              "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
              "with stops.StopSignals() as stop:\n"
              "    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN\n"
              "    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL\n"
              "print('ok')")
    r = subprocess.run([sys.executable, "-c", script, ROOT], capture_output=True, text=True, timeout=60)
    assert r.stdout == "ok\n", r.stderr


class _Pipe:
    """A stream whose writes fail as a closed pipe's do."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        return self.fd


def test_a_guarded_stream_reports_a_closed_pipe_once_and_points_it_at_devnull():
    r, w = os.pipe()
    lost = []
    guarded = stops._Guarded(_Pipe(w), lambda: lost.append(1))
    assert guarded.write("x") == 1 and lost == [1]
    os.write(w, b"after")  # the descriptor now writes to /dev/null
    os.close(w)
    assert os.read(r, 10) == b""
    os.close(r)
