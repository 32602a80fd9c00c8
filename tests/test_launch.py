"""python -m cogan_tf.launch with stand-in workers (small Python programs, no TensorFlow), so what the
launcher does when a worker refuses, fails or stops on a signal is checked in seconds: its lines, its
exit status, and how soon the other workers end."""

import json
import signal
import subprocess
import sys
import time

import pytest

from cogan_tf import launch
from tests.conftest import ROOT

# A stand-in worker: behaves as TF_CONFIG's index says (``plan`` maps an index to an action), prints a
# line first, then: "refuse" exits 2 with one line; "fail" exits 1; "train" runs until SIGINT or
# SIGTERM, then prints a stop line and exits 128 + the signal; "hang" ignores SIGINT and SIGTERM.
WORKER = r"""
import json, os, signal, sys, time
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
action = json.loads(sys.argv[1])[str(index)]
stop = []
if action == "train":
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
if action == "hang":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"worker {index} up", flush=True)
if action == "refuse":
    time.sleep(0.5)
    print("error: --flag: refused", file=sys.stderr, flush=True)
    sys.exit(2)
if action == "fail":
    time.sleep(0.5)
    sys.exit(1)
while not stop:
    time.sleep(0.05)
print(f"stopped by {signal.Signals(stop[0]).name}", file=sys.stderr, flush=True)
sys.exit(128 + stop[0])
"""

RUN = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cogan_tf import launch
launch.WORKER_COMMAND = (sys.executable, "-c", sys.argv[2], sys.argv[3])
launch._refusal = lambda flags, environ: None  # the stand-ins take no main.py flags
sys.exit(launch.main(sys.argv[4:]))
"""


def start(plan, *args, cwd):
    return subprocess.Popen([sys.executable, "-c", RUN, ROOT, WORKER, json.dumps(plan), *args], cwd=str(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def wait_for(p, *texts):
    """Read the launcher's stdout until a line has contained each of ``texts``, in any order (the workers'
    lines come in whatever order they print them); fails at the end of the output."""
    waiting = set(texts)
    while waiting:
        line = p.stdout.readline()
        assert line, f"no line with {sorted(waiting)}"
        waiting = {t for t in waiting if t not in line}


def test_a_refusal_on_one_worker_ends_the_others_at_once(tmp_path):
    t = time.time()
    status, out, err = finish(start({"0": "hang", "1": "refuse"}, "--workers", "2", "--grace_seconds", "60",
                                    cwd=tmp_path))
    assert status == 2
    assert time.time() - t < 20  # not after the 60 s grace
    assert "[worker 1] error: --flag: refused\n" in err
    assert " [!] worker 1 refused to start (its line above): ending the others\n" in err


def test_a_failure_gives_the_others_the_grace_period_then_kills_them(tmp_path):
    status, out, err = finish(start({"0": "hang", "1": "fail"}, "--workers", "2", "--grace_seconds", "1",
                                    cwd=tmp_path))
    assert status == 1
    assert " [!] worker 1 failed with status 1: the others get 1 s to stop\n" in err
    assert " [!] killed worker 0, still running 1 s after worker 1 ended\n" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_asked_for_is_reported_as_a_stop_not_a_failure(tmp_path, signum):
    p = start({"0": "train", "1": "train"}, "--workers", "2", cwd=tmp_path)
    wait_for(p, "worker 0 up", "worker 1 up")
    p.send_signal(signum)
    status, out, err = finish(p)
    name = signal.Signals(signum).name
    assert status == 128 + signum
    assert f"[worker 0] stopped by {name}\n" in err and f"[worker 1] stopped by {name}\n" in err
    assert "[!]" not in err
    assert err.endswith(f" [*] the workers stopped on {name}, as asked (status {128 + signum}): run the same "
                        "command to resume\n")


@pytest.mark.parametrize("argv, message", [
    (["--workers", "2", "--grace_seconds", "nan"], "--grace_seconds nan: must be a number of seconds, 0 or more"),
    (["--workers", "2", "--grace_seconds", "-1"], "--grace_seconds -1: must be a number of seconds, 0 or more"),
    (["--workers", "100000"], "--workers 100000: each worker is a TensorFlow process of about 1 GB"),
])
def test_launcher_flags_are_refused_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        launch.parse(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_the_machine_limit_counts_memory_and_open_files():
    gb = 1 << 30
    assert launch.machine_limit(2, memory=24 * gb, open_files=1024) is None
    assert "at most 24 workers here" in launch.machine_limit(30, memory=24 * gb, open_files=1024)
    assert launch.machine_limit(500, memory=1000 * gb, open_files=1024) == (
        "needs 1032 open files and the limit is 1024: raise it (ulimit -n) or start fewer workers")
