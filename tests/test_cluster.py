"""--strategy multiworker without TensorFlow: each process's role from its TF_CONFIG (TensorFlow's rules:
the chief task, else worker 0), each worker's rows of a global batch, the launcher's pieces, and the
refusals main.py and the launcher give before any worker trains (real processes, no TensorFlow started)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import cluster, launch
from cogan_tf.errors import UsageError
from tests.conftest import ROOT, run_main_refusal


def tf_config(cluster_spec, kind="worker", index=0):
    return json.dumps({"cluster": cluster_spec, "task": {"type": kind, "index": index}})


def test_worker_zero_is_the_chief_when_the_cluster_has_no_chief_task():
    spec = {"worker": ["a:1", "b:1", "c:1"]}
    roles = [cluster.parse_tf_config(tf_config(spec, index=i)) for i in range(3)]
    assert [(r.index, r.workers, r.chief) for r in roles] == [(0, 3, True), (1, 3, False), (2, 3, False)]
    assert [r.name for r in roles] == ["the chief", "worker 1", "worker 2"]


def test_a_chief_task_is_the_chief_and_the_workers_come_after_it():
    spec = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    chief = cluster.parse_tf_config(tf_config(spec, "chief", 0))
    w0 = cluster.parse_tf_config(tf_config(spec, "worker", 0))
    w1 = cluster.parse_tf_config(tf_config(spec, "worker", 1))
    assert (chief.index, chief.chief, chief.workers) == (0, True, 3)
    assert (w0.index, w0.chief) == (1, False)  # worker 0 is not the chief when there is a chief task
    assert (w1.index, w1.chief) == (2, False)


def test_only_multiworker_reads_tf_config():
    env = {"TF_CONFIG": tf_config({"worker": ["a:1", "b:1"]}, index=1)}
    assert cluster.role("multiworker", env) == cluster.Role(1, 2)
    # A stray TF_CONFIG never turns another run into a silent non-chief.
    assert cluster.role("default", env) == cluster.Role() and cluster.role("mirrored", env).chief
    assert cluster.role("multiworker", {}) == cluster.Role()  # no TF_CONFIG: a cluster of one
    assert cluster.role("multiworker", {"TF_CONFIG": " "}).workers == 1


@pytest.mark.parametrize("text, why", [
    ("{not json", "not JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "needs a \"cluster\" and a \"task\""),
    (tf_config({"worker": ["a:1"], "ps": ["b:1"]}), "ps tasks: --strategy multiworker runs chief and worker tasks"),
    (tf_config({"worker": ["a:1"]}, "evaluator"), "task type 'evaluator': --strategy multiworker runs chief and"),
    (tf_config({"worker": ["a:1", "b:1"]}, index=2), "task index 2: the cluster has 2 worker task(s)"),
    (tf_config({"worker": ["a:1"]}, index=True), "task index True"),
    (tf_config({"worker": "a:1"}), "cluster.worker must be a list"),
    (tf_config({"chief": ["a:1", "b:1"]}, "chief"), "2 chief tasks"),
    (tf_config({"worker": []}), "the cluster has no worker"),
])
def test_bad_tf_config_is_one_line_naming_the_problem(text, why):
    with pytest.raises(UsageError) as e:
        cluster.parse_tf_config(text)
    msg = str(e.value)
    assert msg.startswith("TF_CONFIG: ") and why in msg and "\n" not in msg


def test_the_workers_rows_are_the_replicas_contiguous_shares_in_order():
    """Each worker reads its replicas' rows; over the workers in order they are the global batch, each
    replica's rows those gan.replica_share gives replica r of n (start r * batch / n)."""
    batch = np.arange(24)
    for replicas, workers in ((2, 2), (4, 2), (6, 3), (4, 4), (3, 1)):
        per = len(batch) // replicas
        pieces = [batch[slice(*cluster.worker_rows(len(batch), replicas, workers, w))] for w in range(workers)]
        assert np.array_equal(np.concatenate(pieces), batch)
        local = replicas // workers
        for w, piece in enumerate(pieces):
            shares = [batch[r * per:(r + 1) * per] for r in range(w * local, (w + 1) * local)]
            assert np.array_equal(piece, np.concatenate(shares))


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(UsageError, match=r"--batch_size 10 does not split evenly across 4 replicas: pass a multiple "
                                         r"of 4"):
        cluster.worker_rows(10, 4, 2, 0)
    with pytest.raises(UsageError, match="every worker needs the same number of devices"):
        cluster.worker_rows(12, 3, 2, 0)


def test_the_launcher_s_tf_config_gives_each_worker_its_role():
    addresses = ["localhost:1", "localhost:2", "localhost:3"]
    roles = [cluster.parse_tf_config(cluster.tf_config(addresses, i)) for i in range(3)]
    assert roles == [cluster.Role(i, 3) for i in range(3)]
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


def test_the_launcher_prefixes_each_worker_s_lines_and_exits_with_its_status(tmp_path):
    """Two real workers refusing a flag before TensorFlow starts: each line carries its worker's index,
    and the launcher exits with their status."""
    r = launcher(["--workers", "2", "--", "--batch_size", "0"], tmp_path)
    assert r.returncode == 2
    lines = sorted(line for line in r.stderr.splitlines() if line.startswith("[worker"))
    assert lines == [f"[worker {i}] error: --batch_size=0: must be at least 1" for i in (0, 1)]
    assert "Traceback" not in r.stderr


def test_main_refuses_multiworker_evaluation_and_a_bad_tf_config_before_tensorflow(tmp_path, monkeypatch):
    run_main_refusal(tmp_path, ["--is_train", "False", "--strategy", "multiworker"],
                     "error: --strategy=multiworker: is for training; --is_train False evaluates in one process: "
                     "drop --strategy")
    monkeypatch.setenv("TF_CONFIG", tf_config({"worker": ["a:1"]}, index=3))
    r = run_main_refusal(tmp_path, ["--strategy", "multiworker"],
                         "error: TF_CONFIG: task index 3: the cluster has 1 worker task(s) (expected {\"cluster\": "
                         "{\"worker\": [\"host1:port\", ...]}, \"task\": {\"type\": \"worker\", \"index\": 0}})")
    assert os.listdir(tmp_path) == []  # refused before any folder was probed or locked
