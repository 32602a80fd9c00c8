"""--strategy multiworker without TensorFlow: each process's role from its TF_CONFIG (TensorFlow's rules:
the chief task, else worker 0), each worker's rows of a global batch, the launcher's pieces, and the
refusals main.py and the launcher give before any worker trains (real processes, no TensorFlow started)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cogan_tf import launch, tf_config
from cogan_tf.errors import UsageError
from tests.conftest import ROOT, run_main_refusal


def tf_config_json(cluster_spec, kind="worker", index=0):
    return json.dumps({"cluster": cluster_spec, "task": {"type": kind, "index": index}})


def test_worker_zero_is_the_chief_when_the_cluster_has_no_chief_task():
    spec = {"worker": ["a:1", "b:1", "c:1"]}
    roles = [tf_config.parse(tf_config_json(spec, index=i)) for i in range(3)]
    assert [(r.index, r.workers, r.chief) for r in roles] == [(0, 3, True), (1, 3, False), (2, 3, False)]
    assert [r.name for r in roles] == ["the chief", "worker 1", "worker 2"]


def test_a_chief_task_is_the_chief_and_the_workers_come_after_it():
    spec = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    chief = tf_config.parse(tf_config_json(spec, "chief", 0))
    w0 = tf_config.parse(tf_config_json(spec, "worker", 0))
    w1 = tf_config.parse(tf_config_json(spec, "worker", 1))
    assert (chief.index, chief.chief, chief.workers) == (0, True, 3)
    assert (w0.index, w0.chief) == (1, False)  # worker 0 is not the chief when there is a chief task
    assert (w1.index, w1.chief) == (2, False)


def test_only_multiworker_reads_tf_config():
    env = {"TF_CONFIG": tf_config_json({"worker": ["a:1", "b:1"]}, index=1)}
    assert tf_config.role("multiworker", env) == tf_config.Role(1, 2)
    # A stray TF_CONFIG never turns another run into a silent non-chief.
    assert tf_config.role("default", env) == tf_config.Role() and tf_config.role("mirrored", env).chief
    assert tf_config.role("multiworker", {}) == tf_config.Role()  # no TF_CONFIG: a cluster of one
    with pytest.raises(UsageError, match="TF_CONFIG is set but empty: unset it to train as one worker"):
        tf_config.role("multiworker", {"TF_CONFIG": " "})


@pytest.mark.parametrize("text, why", [
    ("{not json", "not JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "needs a \"cluster\" and a \"task\""),
    (tf_config_json({"worker": ["a:1"], "ps": ["b:1"]}), "ps tasks: --strategy multiworker runs chief and worker tasks"),
    (tf_config_json({"worker": ["a:1"]}, "evaluator"), "task type 'evaluator': --strategy multiworker runs chief and"),
    (tf_config_json({"worker": ["a:1", "b:1"]}, index=2), "task index 2: the cluster has 2 worker task(s)"),
    (tf_config_json({"worker": ["a:1"]}, index=True), "task index True"),
    (tf_config_json({"worker": "a:1"}), "cluster.worker must be a list"),
    (tf_config_json({"chief": ["a:1", "b:1"]}, "chief"), "2 chief tasks"),
    (tf_config_json({"worker": []}), "the cluster has no worker"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}), "the task has no \"index\""),
    (tf_config_json({"worker": ["a:1", "a:1"]}), "a:1 is given to 2 tasks; every worker needs its own port"),
    (tf_config_json({"worker": ["a:1", "b"]}), "'b' is not a \"host:port\" address"),
    (tf_config_json({"worker": ["a:1", "b:99999"]}), "'b:99999' is not a \"host:port\" address"),
])
def test_bad_tf_config_is_one_line_naming_the_problem(text, why):
    with pytest.raises(UsageError) as e:
        tf_config.parse(text)
    msg = str(e.value)
    assert msg.startswith("TF_CONFIG: ") and why in msg and "\n" not in msg


def test_the_workers_rows_are_the_replicas_contiguous_shares_in_order():
    """Each worker reads its replicas' rows; over the workers in order they are the global batch, each
    replica's rows those gan.replica_share gives replica r of n (start r * batch / n)."""
    batch = np.arange(24)
    for replicas, workers in ((2, 2), (4, 2), (6, 3), (4, 4), (3, 1)):
        per = len(batch) // replicas
        pieces = [batch[slice(*tf_config.worker_rows(len(batch), replicas, workers, w))] for w in range(workers)]
        assert np.array_equal(np.concatenate(pieces), batch)
        local = replicas // workers
        for w, piece in enumerate(pieces):
            shares = [batch[r * per:(r + 1) * per] for r in range(w * local, (w + 1) * local)]
            assert np.array_equal(piece, np.concatenate(shares))


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(UsageError, match=r"--batch_size 10 does not split evenly across 4 replicas: pass a multiple "
                                         r"of 4"):
        tf_config.worker_rows(10, 4, 2, 0)
    with pytest.raises(UsageError, match="every worker needs the same number of devices"):
        tf_config.worker_rows(12, 3, 2, 0)


def test_the_launcher_s_tf_config_gives_each_worker_its_role():
    addresses = ["localhost:1", "localhost:2", "localhost:3"]
    roles = [tf_config.parse(tf_config.for_worker(addresses, i)) for i in range(3)]
    assert roles == [tf_config.Role(i, 3) for i in range(3)]
    env = launch.worker_env({"PYTHONPATH": "/elsewhere", "HOME": "/h"}, addresses, 1, threads=1)
    assert json.loads(env["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    assert env["PYTHONPATH"].split(os.pathsep) == [launch.PACKAGE_PARENT, "/elsewhere"]  # this package first
    assert env["TF_NUM_INTRAOP_THREADS"] == env["TF_NUM_INTEROP_THREADS"] == "1" and env["HOME"] == "/h"
    assert "TF_NUM_INTRAOP_THREADS" not in launch.worker_env({}, addresses, 0, threads=0)


def test_free_ports_are_distinct_and_bindable():
    import socket

    ports = launch.free_ports(4)
    assert len(set(ports)) == 4
    for p in ports:
        with socket.socket() as s:
            s.bind(("localhost", p))


def test_exit_status_of_a_killed_worker_is_the_shell_s():
    assert [launch.exit_status(c) for c in (0, 1, 130, -9, -15)] == [0, 1, 130, 137, 143]


def test_the_launcher_adds_multiworker_and_refuses_another_strategy(capsys):
    assert launch.parse(["--workers", "2", "--", "--max_steps", "3"]).flags == ["--max_steps", "3",
                                                                                 "--strategy=multiworker"]
    assert launch.parse(["--workers", "2", "--", "--strategy", "multiworker"]).flags == ["--strategy", "multiworker"]
    for argv, message in ((["--workers", "2", "--", "--strategy=mirrored"], "--strategy mirrored: the workers train "
                           "with --strategy multiworker; drop the flag"),
                          (["--workers", "0"], "--workers 0: must be at least 1")):
        with pytest.raises(SystemExit) as e:
            launch.parse(argv)
        assert e.value.code == 2
        assert capsys.readouterr().err == f"error: {message} (see --help)\n"


def launcher(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "cogan_tf", "launch"] + args, cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_launcher_refuses_a_bad_flag_once_before_starting_any_worker(tmp_path):
    """main.py's refusal, checked by the launcher itself: one line, not one per worker (100 workers gave
    100 identical lines), and no worker started."""
    r = launcher(["--workers", "3", "--", "--batch_size", "0"], tmp_path)
    assert (r.returncode, r.stderr) == (2, "error: --batch_size=0: must be at least 1\n")
    r = launcher(["--workers", "2", "--", "--model", "clustergan"], tmp_path)
    assert r.returncode == 2 and r.stderr == ("error: --strategy=multiworker: multiworker trains the CoGAN; --model "
                                              "clustergan trains in one process: drop --strategy\n")
    assert os.listdir(tmp_path) == []  # nothing probed, no folder or lock left behind


def test_main_refuses_multiworker_evaluation_and_a_bad_tf_config_before_tensorflow(tmp_path, monkeypatch):
    run_main_refusal(tmp_path, ["--is_train", "False", "--strategy", "multiworker"],
                     "error: --strategy=multiworker: is for training; --is_train False evaluates in one process: "
                     "drop --strategy")
    monkeypatch.setenv("TF_CONFIG", tf_config_json({"worker": ["a:1"]}, index=3))
    r = run_main_refusal(tmp_path, ["--strategy", "multiworker"],
                         "error: TF_CONFIG: task index 3: the cluster has 1 worker task(s) (expected {\"cluster\": "
                         "{\"worker\": [\"host1:port\", ...]}, \"task\": {\"type\": \"worker\", \"index\": 0}})")
    assert os.listdir(tmp_path) == []  # refused before any folder was probed or locked
    for env, message in ((" ", "error: TF_CONFIG is set but empty: unset it to train as one worker, or describe the "
                               "cluster (python -m cogan_tf.launch sets it for workers on this machine)"),
                         (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}),
                          "error: TF_CONFIG: the task has no \"index\"")):
        monkeypatch.setenv("TF_CONFIG", env)
        r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--strategy", "multiworker"],
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1, r.stderr
    monkeypatch.delenv("TF_CONFIG")
    run_main_refusal(tmp_path, ["--model", "clustergan", "--strategy", "multiworker"],
                     "error: --strategy=multiworker: multiworker trains the CoGAN; --model clustergan trains in one "
                     "process: drop --strategy")
    assert os.listdir(tmp_path) == []


# --- a worker waiting for the others -----------------------------------------------------------------------

WAIT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cogan_tf import cli, tf_config
from cogan_tf.errors import RunStopped, UsageError
role = tf_config.parse(sys.argv[2])
try:
    tf_config.wait_for_workers(role, float(sys.argv[3]), say_after=0.5)
except (RunStopped, UsageError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(getattr(e, "status", 2))
print("all here", flush=True)
# Then, as TensorFlow's gRPC server would, answer on this worker's port with an HTTP/2 SETTINGS frame,
# for the workers still waiting.
import socket, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("", int(role.addresses[role.index].rsplit(":", 1)[1])))
server.listen()
server.settimeout(0.2)
end = time.time() + float(sys.argv[4])
while time.time() < end:
    try:
        conn, _ = server.accept()
        conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        conn.close()
    except OSError:
        pass
"""


def waiting(addresses, index, timeout=30.0, serve=0.0):
    """A process waiting as worker ``index``; once all are there, it serves as TensorFlow would for ``serve`` s."""
    return subprocess.Popen([sys.executable, "-c", WAIT, ROOT, tf_config.for_worker(addresses, index), str(timeout),
                             str(serve)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_workers_started_apart_find_each_other():
    addresses = [f"localhost:{p}" for p in launch.free_ports(3)]
    first = waiting(addresses, 0, serve=5)
    assert first.stdout.readline() == (f" [*] the chief ({addresses[0]}) is waiting for worker 1 at {addresses[1]}, "
                                       f"worker 2 at {addresses[2]} (gives up after 30 s)\n")
    others = [waiting(addresses, i, serve=5) for i in (1, 2)]
    for p in [first] + others:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and out.endswith("all here\n"), err


def test_two_waiting_workers_probing_each_other_at_once_see_each_other():
    # Each worker's port answers only from inside its own probe here: a probe that waited for the other's banner
    # without answering itself would hold both for the whole timeout and take each for another program.
    servers = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("localhost", 0))
        s.listen(8)
        s.setblocking(False)
        servers.append(s)
    addresses = [f"localhost:{s.getsockname()[1]}" for s in servers]
    seen = {}
    start = threading.Barrier(2)

    def probe(me):
        start.wait()
        seen[me] = tf_config._probe(addresses[1 - me], timeout=5.0, server=servers[me], index=me)

    threads = [threading.Thread(target=probe, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in servers:
        s.close()
    assert seen == {0: "worker 1", 1: "worker 0"}


def test_workers_started_together_find_each_other():
    addresses = [f"localhost:{p}" for p in launch.free_ports(3)]
    workers = [waiting(addresses, i, serve=5) for i in range(3)]
    for p in workers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.endswith("all here\n"), err


def test_a_worker_waits_a_bounded_time_and_says_for_whom():
    addresses = [f"localhost:{p}" for p in launch.free_ports(2)]
    t = time.time()
    p = waiting(addresses, 1, timeout=2)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and 2 <= time.time() - t < 20
    assert out == f" [*] worker 1 ({addresses[1]}) is waiting for the chief at {addresses[0]} (gives up after 2 s)\n"
    assert err == (f"error: worker 1 waited 2 s for the chief at {addresses[0]}, in vain: start every worker of the run "
                   "with the same command and its own TF_CONFIG (--wait_for_workers sets the wait); nothing was "
                   "trained\n")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_waiting_worker_stops_on_a_signal_in_one_line(signum):
    addresses = [f"localhost:{p}" for p in launch.free_ports(2)]
    p = waiting(addresses, 0)
    p.stdout.readline()  # it waits
    p.send_signal(signum)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signum
    assert err == (f"error: stopped by {signum.name} while the chief waited for the other workers: nothing was "
                   "trained\n")


def test_a_port_held_by_another_program_is_refused_or_named():
    addresses = [f"localhost:{p}" for p in launch.free_ports(2)]
    holder = socket.socket()
    holder.bind(("", int(addresses[0].rsplit(":", 1)[1])))
    holder.listen()
    try:
        out, err = waiting(addresses, 0).communicate(timeout=30)  # its own port: refused at once
        assert err == (f"error: TF_CONFIG gives the chief {addresses[0]}, but port {addresses[0].rsplit(':', 1)[1]} is "
                       "in use on this machine: choose a free port for it (python -m cogan_tf.launch picks free ones)\n")
        p = waiting(addresses, 1, timeout=2)  # a partner's port: not taken for the partner
        out, err = p.communicate(timeout=30)
        assert p.returncode == 1
        assert f"waiting for the chief at {addresses[0]} (another program answers there)" in out
    finally:
        holder.close()


def test_main_waits_for_a_missing_worker_in_one_line_and_obeys_sigterm(tmp_path):
    """main.py as a user starts it, with only worker 0 of two: it says within seconds whom it waits for,
    and SIGTERM ends it with one line (TensorFlow's own wait printed nothing and ignored SIGTERM)."""
    addresses = [f"localhost:{p}" for p in launch.free_ports(2)]
    env = dict(os.environ, TF_CONFIG=tf_config.for_worker(addresses, 0), PYTHONUNBUFFERED="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), "--strategy", "multiworker"], cwd=str(tmp_path),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line == (f" [*] the chief ({addresses[0]}) is waiting for worker 1 at {addresses[1]} (gives up after "
                    "600 s)\n")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143
    assert err == "stopped by SIGTERM while the chief waited for the other workers: nothing was trained\n"


def test_the_watchdog_ends_a_call_that_overruns_its_bound_with_one_thread():
    from cogan_tf import multiworker

    aborted = []
    dog = multiworker.Watchdog(0.3, abort=aborted.append, tick_s=0.05)
    before = threading.active_count()
    for _ in range(20):  # calls within the bound: nothing aborted, and no thread per call
        with dog.bounded():
            time.sleep(0.01)
    assert aborted == [] and threading.active_count() == before + 1
    with dog.bounded():
        time.sleep(0.6)
    assert aborted == ["timed out: no answer from another worker for 0.3 s"]
