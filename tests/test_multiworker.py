"""--strategy multiworker for real: two worker processes on this machine, each with its own TF_CONFIG (two
localhost ports) and one CPU thread, through the library, main.py and the launcher. What one process
computes on the global batch, the two compute step for step; only the chief writes the run's files;
stops, kills and restarts in either direction lose nothing. All slow: each worker is a TensorFlow process.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cogan_tf import launch
from tests.conftest import ROOT, write_fake_dataset
from tests.tolerance import COGAN_RTOL

pytestmark = pytest.mark.slow

TIMEOUT = 900  # seconds for any one run of two workers on a loaded 2-core machine; a hang fails, never waits

# One process of a library run: ``runs`` of runner.run on 64 random image pairs (the arrays of
# tests/test_distribute.py), their log lines written to ``out``. Multi-worker runs take their role from
# TF_CONFIG; ``mirrored`` runs use two logical CPU devices.
WORKER = r"""
import json, sys
args = json.loads(sys.argv[1])
sys.path.insert(0, args["root"])
import numpy as np
import tensorflow as tf
if args.get("logical_devices"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from cogan_tf import config as C, gan as gan_lib, multiworker, runner, tf_config
if args.get("bound"):
    multiworker.COLLECTIVE_TIMEOUT_S = args["bound"]
stall = args.get("stall")
if stall and tf_config.role("multiworker").index == stall["worker"]:
    import time
    agree, calls = multiworker.Workers.agree_on_stop, []
    def stalled(self, stop):
        calls.append(1)
        if len(calls) == stall["at"]:
            time.sleep(stall["seconds"])
        return agree(self, stop)
    multiworker.Workers.agree_on_stop = stalled
if args.get("sgd"):
    # As tests/test_distribute.py: with SGD a weight difference is a gradient difference (Adam turns float
    # noise in near-zero gradients into full learning-rate steps).
    gan_lib.GAN.make_optimizer = lambda self, lr, b1, b2, **kw: keras.optimizers.SGD(learning_rate=0.01)
x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
lines = {}
for run in args["runs"]:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if run.get("mirrored") else None
    log = lines.setdefault(run["train"]["checkpoint_dir"], [])
    runner.run(C.CoganConfig(**run.get("model", {})), C.TrainConfig(**run["train"]), arrays=[x, 255 - x],
               strategy=strategy, log=log.append)
json.dump(lines, open(args["out"], "w"))
"""


def train_kwargs(folder, **kw):
    base = dict(batch_size=16, epoch=1, seed=5, log_every=1, sample_every=0, save_every=1, keep_checkpoints=None,
                checkpoint_dir=os.path.join(folder, "ck"), sample_dir=os.path.join(folder, "s"),
                log_dir=os.path.join(folder, "l"), export_dir=os.path.join(folder, "e"),
                evaluate_dir=os.path.join(folder, "v"))
    base.update(kw)
    return base


def user_env(tmpdir, **extra):
    """The environment a user's run has: without the tests' TF_CPP_MIN_LOG_LEVEL (main.py sets its own),
    with ``tmpdir`` as the temporary folder, to see what a run leaves there."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return dict(env, TMPDIR=str(tmpdir), **extra)


def leftovers(tmpdir):
    """What the workers' temporary folders of checkpoint saves and exports left in ``tmpdir`` (TensorFlow's
    autograph leaves its generated sources there too)."""
    return [n for n in os.listdir(tmpdir) if n.startswith("cogan_tf-worker")]


def start_workers(commands, cwds, tmpdir, n=2):
    """Start ``n`` workers of one cluster on free local ports, one CPU thread each, worker i's output in
    w<i>.out and w<i>.err of its folder; returns the processes."""
    addresses = [f"localhost:{p}" for p in launch.free_ports(n)]
    procs = []
    for i in range(n):
        env = launch.worker_env(user_env(tmpdir), addresses, i, threads=1)
        os.makedirs(cwds[i], exist_ok=True)
        with open(os.path.join(cwds[i], f"w{i}.out"), "w") as out, open(os.path.join(cwds[i], f"w{i}.err"), "w") as err:
            procs.append(subprocess.Popen(commands[i], cwd=str(cwds[i]), env=env, stdout=out, stderr=err))
    return procs


def wait_all(procs, cwds):
    deadline = time.time() + TIMEOUT
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("workers still running after %d s: %s" % (TIMEOUT, [read(c, f"w{i}.err")[-2000:]
                                                                                     for i, c in enumerate(cwds)]))
    return [p.returncode for p in procs]


def read(folder, name):
    with open(os.path.join(folder, name)) as f:
        return f.read()


def library_run(tmp_path, name, runs, n=2, **args):
    """Run WORKER as ``n`` workers (or one process if n == 1) in tmp_path/name/w<i>; returns each one's lines."""
    cwds = [str(tmp_path / name / f"w{i}") for i in range(n)]
    tmpdir = tmp_path / name / "tmp"
    tmpdir.mkdir(parents=True)
    commands = [[sys.executable, "-c", WORKER, json.dumps(dict(args, root=ROOT, runs=runs, out="lines.json"))]] * n
    if n == 1:
        os.makedirs(cwds[0])
        r = subprocess.run(commands[0], cwd=cwds[0], capture_output=True, text=True, timeout=TIMEOUT,
                           env=dict(os.environ, TMPDIR=str(tmpdir)))
        assert r.returncode == 0, r.stderr[-3000:]
    else:
        codes = wait_all(start_workers(commands, cwds, tmpdir, n), cwds)
        assert codes == [0] * n, [read(c, f"w{i}.err")[-3000:] for i, c in enumerate(cwds)]
    return [json.loads(read(c, "lines.json")) for c in cwds], cwds, tmpdir


# --- chief-only outputs --------------------------------------------------------------------------------

def test_two_workers_train_and_only_the_chief_writes_the_run_s_files(tmp_path):
    """Each worker in a folder of its own with relative output paths: whatever worker 1 wrote would be in
    its folder. The chief's folder has the grids, one TensorBoard event file, config.json, checkpoints and
    the export; worker 1's nothing, and no temporary folder of its saves is left."""
    run = {"train": train_kwargs(".", max_steps=4, sample_every=2, save_every=2, strategy="multiworker")}
    (chief, other), (w0, w1), tmpdir = library_run(tmp_path, "run", [run])
    ck = os.path.join(w0, "ck", "mnist_16_28")
    assert sorted(os.listdir(os.path.join(w0, "s", "top"))) == ["train_00_0001.png", "train_00_0003.png"]
    assert len(glob.glob(os.path.join(w0, "l", "cogan_mnist_16_28", "events.out.tfevents.*"))) == 1
    assert {"config.json", "CoGAN.model-2.index", "CoGAN.model-4.index", "CoGAN.model-5.index"} <= set(os.listdir(ck))
    assert os.path.isfile(os.path.join(w0, "e", "cogan", "saved_model.pb"))
    assert sorted(os.listdir(w1)) == ["lines.json", "w1.err", "w1.out"]
    assert leftovers(tmpdir) == []
    lines, ck_lines = chief["./ck"], other["./ck"]
    assert sum(line.startswith("Epoch: ") for line in lines) == 4 and any("[Sample T]" in x for x in lines)
    assert lines[-1] == " [*] Exported SavedModel to ./e/cogan"
    # The runner names the worker's device and the model before training; from there on only the chief speaks.
    assert [x for x in ck_lines if not x.startswith((" [*] device of this worker: ", " [*] cogan: "))] == []


# --- data: each worker's rows of each global batch -------------------------------------------------------

DATA = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tensorflow as tf
from cogan_tf import data, multiworker, tf_config
strategy = tf.distribute.MultiWorkerMirroredStrategy()
role = tf_config.role("multiworker")
x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
arrays = [x, 255 - x]
def make(start=0):
    return data.make_dataset(arrays, 16, seeds=[(5, 0), (5, 1)], start_batch=start)
def local(batch):
    return [strategy.experimental_local_results(b)[0].numpy() for b in batch]
out = {}
for name, start in (("rows", 0), ("resumed", 1)):
    out[name] = [local(b) for b in multiworker.Workers(strategy, role).distribute(lambda: make(start), 16)]
np.savez("batches.npz", **{f"{k}_{s}_{d}": a for k, steps in out.items() for s, step in enumerate(steps)
                           for d, a in enumerate(step)})
print(json.dumps({k: len(v) for k, v in out.items()}))
"""


def test_one_step_s_rows_over_the_workers_are_the_batch_one_process_takes(tmp_path):
    """From the first step and from a resumed run's first step (start_batch 1)."""
    from cogan_tf import data

    cwds = [str(tmp_path / f"w{i}") for i in range(2)]
    codes = wait_all(start_workers([[sys.executable, "-c", DATA, ROOT]] * 2, cwds, tmp_path), cwds)
    assert codes == [0, 0], [read(c, f"w{i}.err")[-3000:] for i, c in enumerate(cwds)]
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    one = [[t.numpy() for t in b] for b in data.make_dataset([x, 255 - x], 16, seeds=[(5, 0), (5, 1)])]
    got = [np.load(os.path.join(c, "batches.npz")) for c in cwds]
    assert json.loads(read(cwds[0], "w0.out")) == {"rows": 4, "resumed": 3}
    for name, first in (("rows", 0), ("resumed", 1)):
        for s in range(4 - first):
            for d in range(2):  # both domains
                union = np.concatenate([g[f"{name}_{s}_{d}"] for g in got])
                assert np.array_equal(union, one[first + s][d]), (name, s, d)
                assert len(got[0][f"{name}_{s}_{d}"]) == 8  # half each, the chief's first


# --- equivalence with one process ------------------------------------------------------------------------

def load_weights(ck_dir, counter):
    import tensorflow as tf

    # The networks' trainable weights, which the checkpoint holds through their optimizers, as
    # tests/test_distribute.py compares them (BatchNorm's moving statistics move by far more than a step's
    # update and would hide it).
    reader = tf.train.load_checkpoint(os.path.join(ck_dir, "mnist_16_28", f"CoGAN.model-{counter}"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "/_trainable_variables/" in k}


def max_diff(a, b):
    assert a.keys() == b.keys() and len(a) > 20
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def losses(lines):
    return [tuple(float(v) for v in re.findall(r"_loss: ([-0-9.]+)", x)) for x in lines if x.startswith("Epoch: ")]


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    """Three SGD steps of batch 16 with a checkpoint after each, as two workers (with and without
    --sync_batchnorm), one device, and MirroredStrategy on two logical devices in one process."""
    tmp = tmp_path_factory.mktemp("equivalence")
    steps = dict(max_steps=3, save_every=1)
    ref = {name: str(tmp / "ref" / name) for name in ("init", "single", "mirrored")}
    lines, _, _ = library_run(tmp, "ref", [
        {"train": train_kwargs(ref["init"], max_steps=0)},  # the initial weights, as CoGAN.model-1
        {"train": train_kwargs(ref["single"], **steps)},
        {"train": train_kwargs(ref["mirrored"], **steps), "mirrored": True}], n=1, sgd=True, logical_devices=True)
    out = {"ref": ref, "lines": lines[0]}
    for mode in ("sync", "local"):
        run = {"train": train_kwargs(".", strategy="multiworker", **steps), "model": {"sync_batchnorm": mode == "sync"}}
        (chief, _), (w0, _), _ = library_run(tmp, mode, [run], sgd=True)
        out[mode] = {"ck": os.path.join(w0, "ck"), "lines": chief["./ck"]}
    return out


def test_two_workers_with_sync_batchnorm_compute_what_one_process_computes_step_for_step(equivalence):
    ref = equivalence["ref"]
    init = load_weights(os.path.join(ref["init"], "ck"), 1)
    single_losses = losses(equivalence["lines"][os.path.join(ref["single"], "ck")])
    multi_losses = losses(equivalence["sync"]["lines"])
    assert len(single_losses) == len(multi_losses) == 3
    for step in (1, 2, 3):
        single = load_weights(os.path.join(ref["single"], "ck"), step + 1)
        multi = load_weights(equivalence["sync"]["ck"], step + 1)
        moved = max_diff(single, init)
        assert moved > 1e-3, step  # the step really trained
        # The bound of tests/test_distribute.py for MirroredStrategy in one process: synchronised BatchNorm
        # computes the variance as E[x^2] - E[x]^2, one device subtracts the mean first.
        assert max_diff(multi, single) < 0.05 * moved, (step, max_diff(multi, single), moved)
        # The step's losses (the log line's 8 decimals): rounding of the same sums, relative to the loss.
        for a, b in zip(multi_losses[step - 1], single_losses[step - 1]):
            assert abs(a - b) <= COGAN_RTOL * abs(b) + 1e-8, (step, a, b)


def test_two_workers_without_sync_batchnorm_normalise_each_worker_s_half_batch(equivalence):
    """The documented default: per-replica BatchNorm statistics, the function MirroredStrategy trains in one
    process with two replicas, and not one device's."""
    ref = equivalence["ref"]
    init = load_weights(os.path.join(ref["init"], "ck"), 1)
    gaps = []
    for step in (1, 2, 3):
        single = load_weights(os.path.join(ref["single"], "ck"), step + 1)
        mirrored = load_weights(os.path.join(ref["mirrored"], "ck"), step + 1)
        multi = load_weights(equivalence["local"]["ck"], step + 1)
        moved = max_diff(single, init)
        assert max_diff(multi, mirrored) < 0.05 * moved, step
        gaps.append(max_diff(multi, single) / moved)
    assert gaps[-1] > 0.1, gaps  # another function than one device's (tests/test_distribute.py's bound)


# --- main.py and the launcher: resume in both directions, signals, a killed worker --------------------------

COMMON = ["--batch_size", "16", "--log_every", "1"]


class Launched:
    """``python -m cogan_tf launch`` with two workers of one thread each, its output in files of ``cwd``."""

    def __init__(self, cwd, tag, flags, tmpdir, grace=60):
        self.cwd, self.tag = str(cwd), tag
        env = user_env(tmpdir, PYTHONPATH=ROOT)
        with open(self.path("out"), "w") as out, open(self.path("err"), "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "cogan_tf", "launch", "--workers", "2",
                                          "--threads_per_worker", "1", "--grace_seconds", str(grace), "--"] + flags,
                                         cwd=self.cwd, env=env, stdout=out, stderr=err)

    def path(self, kind):
        return os.path.join(self.cwd, f"{self.tag}.{kind}")

    def lines(self, kind, worker=None):
        text = read(self.cwd, f"{self.tag}.{kind}")
        if worker is None:
            return text.splitlines()
        prefix = f"[worker {worker}] "
        return [x[len(prefix):] for x in text.splitlines() if x.startswith(prefix)]

    def steps(self):
        return sum(x.startswith("Epoch: ") for x in self.lines("out", 0))

    def wait_for_steps(self, n):
        deadline = time.time() + TIMEOUT
        while self.steps() < n:
            assert self.proc.poll() is None, self.lines("err")[-20:]
            assert time.time() < deadline, f"no step {n} after {TIMEOUT} s"
            time.sleep(0.5)

    def pids(self):
        m = re.search(r"pids (\d+), (\d+)", read(self.cwd, f"{self.tag}.err"))
        return [int(m.group(1)), int(m.group(2))]

    def wait(self):
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(self.lines("err")[-20:])


def one_process(cwd, flags, tmpdir):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py")] + flags, cwd=str(cwd), capture_output=True,
                       text=True, timeout=TIMEOUT, env=user_env(tmpdir))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def checkpoints_on_disk(run):
    return sorted(int(m.group(1)) for m in map(re.compile(r"CoGAN\.model-(\d+)\.index").fullmatch,
                                               os.listdir(os.path.join(run, "checkpoint", "mnist_16_28"))) if m)


def checkpoint_values(run, counter, *names):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(run, "checkpoint", "mnist_16_28", f"CoGAN.model-{counter}"))
    return [reader.get_tensor(f"{n}/.ATTRIBUTES/VARIABLE_VALUE") for n in names]


@pytest.fixture
def run_dir(tmp_path):
    """A run's folder, the fake data beside it (360 image pairs: 22 steps per epoch at batch 16) and an
    empty folder that is the workers' TMPDIR."""
    write_fake_dataset(tmp_path / "data")
    (tmp_path / "run").mkdir()
    (tmp_path / "tmp").mkdir()
    return tmp_path


def test_a_checkpoint_moves_between_two_workers_and_one_process_without_losing_anything(run_dir):
    """Two workers train steps 1-3, one process resumes for 4-6, two workers again for 7-8, one process
    evaluates. Each resumes at the step the other stopped at, and the last checkpoint holds exactly what 8
    steps leave: the step, 8 D and 16 G optimizer updates, and the random generator advanced by 8 steps'
    draws (it is counter-based: each step's z advances it by the same amount)."""
    import tensorflow as tf

    run, tmpdir = str(run_dir / "run"), run_dir / "tmp"
    flags = COMMON + ["--data_dir", str(run_dir / "data"), "--save_every", "2", "--keep_checkpoints", "0"]
    first = Launched(run, "first", flags + ["--max_steps", "3"], tmpdir)
    assert first.wait() == 0, first.lines("err")[-20:]
    assert " [*] no checkpoint in checkpoint/mnist_16_28: starting a new run" in first.lines("out", 0)
    # Both workers run in one folder: had worker 1 probed the output folders or taken the checkpoint folder's
    # lock, it would have raced the chief or been refused. It printed nothing.
    assert first.lines("out", 1) == [] and first.lines("err", 1) == [] and first.lines("err", 0) == []
    assert checkpoints_on_disk(run) == [2, 4]
    out = one_process(run, flags + ["--max_steps", "6"], tmpdir)
    assert " [*] Load SUCCESS: checkpoint/mnist_16_28/CoGAN.model-4 (step 3)" in out.splitlines()
    assert "resuming at step 3" in out
    again = Launched(run, "again", flags + ["--max_steps", "8"], tmpdir)
    assert again.wait() == 0, again.lines("err")[-20:]
    assert " [*] Load SUCCESS: checkpoint/mnist_16_28/CoGAN.model-7 (step 6)" in again.lines("out", 0)
    assert sum(x.startswith("Epoch: ") for x in again.lines("out", 0)) == 2
    assert checkpoints_on_disk(run) == [2, 4, 6, 7, 8, 9] and leftovers(tmpdir) == []
    out = one_process(run, ["--is_train", "False", "--noreport", "--batch_size", "16", "--data_dir", str(run_dir / "data")],
                      tmpdir)
    assert " [*] Load SUCCESS: checkpoint/mnist_16_28/CoGAN.model-9 (step 8)" in out.splitlines()
    assert os.path.isfile(os.path.join(run, "evaluate", "top", "test_00.png"))

    step, d_iters, g_iters = checkpoint_values(run, 9, "step", "d_optimizer/_iterations", "g_optimizer/_iterations")
    assert (int(step), int(d_iters), int(g_iters)) == (8, 8, 16)
    start = tf.random.Generator.from_seed(0).state.numpy()  # --seed not given: 0
    states = {n: checkpoint_values(run, c, "rng/_state_var")[0] for n, c in ((3, 4), (6, 7), (8, 9))}
    per_step = (states[3] - start) / 3
    assert per_step[0] > 0 and per_step[0] == int(per_step[0])
    for n, state in states.items():
        assert np.array_equal(state - start, n * per_step), n


def test_a_signal_to_one_worker_stops_both_after_the_same_step_and_both_resume(run_dir):
    """SIGTERM to worker 1 alone: the workers agree on it after the step, both save that step (the chief's
    copy kept) and exit 143. Restarted, both resume there; Ctrl-C to the launcher (SIGINT, passed on to
    both) stops them again; a last start finishes."""
    run, tmpdir = str(run_dir / "run"), run_dir / "tmp"
    flags = COMMON + ["--data_dir", str(run_dir / "data"), "--save_every", "0"]
    first = Launched(run, "first", flags + ["--max_steps", "400"], tmpdir)
    first.wait_for_steps(3)
    os.kill(first.pids()[1], signal.SIGTERM)
    assert first.wait() == 143
    stops = [first.lines("err", w) for w in (0, 1)]
    n = int(re.fullmatch(r"stopped by SIGTERM \(sent to worker 1\) after step (\d+): .*", stops[0][0]).group(1))
    line = (f"stopped by SIGTERM (sent to worker 1) after step {n}: saved checkpoint/mnist_16_28/CoGAN.model-{n + 1}; "
            "run the same command to resume")
    assert stops == [[line], [line]]
    assert checkpoints_on_disk(run) == [n + 1] and leftovers(tmpdir) == []

    second = Launched(run, "second", flags + ["--max_steps", "400"], tmpdir)
    second.wait_for_steps(2)
    second.proc.send_signal(signal.SIGINT)
    assert second.wait() == 130
    assert f"resuming at step {n}" in read(run, "second.out")
    m = re.fullmatch(rf"stopped by SIGINT after step (\d+): saved checkpoint/mnist_16_28/CoGAN.model-(\d+); run the "
                     r"same command to resume", second.lines("err", 0)[0])
    assert m and int(m.group(1)) > n and second.lines("err", 1) == second.lines("err", 0)
    m_step = int(m.group(1))
    assert checkpoints_on_disk(run) == [n + 1, m_step + 1]

    last = Launched(run, "last", flags + ["--max_steps", str(m_step + 2)], tmpdir)
    assert last.wait() == 0, last.lines("err")[-20:]
    assert f"resuming at step {m_step}" in read(run, "last.out")
    assert checkpoints_on_disk(run) == [n + 1, m_step + 1, m_step + 3] and leftovers(tmpdir) == []


@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_worker_stops_the_other_in_one_line_and_a_restart_resumes(run_dir, killed):
    """SIGKILL to one worker mid-run: the other exits with status 1 and one line, by itself, long before the
    collectives' own timeout (600 s) would end it. Both started again resume at the newest checkpoint."""
    run, tmpdir = str(run_dir / "run"), run_dir / "tmp"
    flags = COMMON + ["--data_dir", str(run_dir / "data"), "--save_every", "2", "--strategy", "multiworker"]
    main = [sys.executable, os.path.join(ROOT, "main.py")]
    procs = start_workers([main + flags + ["--max_steps", "400"]] * 2, [run, run], tmpdir)
    deadline = time.time() + TIMEOUT
    while sum(x.startswith("Epoch: ") for x in read(run, "w0.out").splitlines()) < 5:
        assert time.time() < deadline and all(p.poll() is None for p in procs), read(run, "w0.err")[-3000:]
        time.sleep(0.5)
    survivor = procs[1 - killed]
    killed_at = time.time()
    procs[killed].kill()
    survivor.wait(timeout=TIMEOUT)
    took = time.time() - killed_at
    assert survivor.returncode == 1 and took < 120, (survivor.returncode, took)
    name = "the chief" if killed == 1 else "worker 1"
    kept = (r"the newest checkpoint, checkpoint/mnist_16_28/CoGAN\.model-\d+, is the last good one" if killed == 1
            else r"the chief's newest checkpoint is where the run resumes")
    assert read(run, f"w{killed}.err") == ""  # quiet until killed
    err = read(run, f"w{1 - killed}.err").splitlines()
    assert len(err) == 1 and re.fullmatch(rf"error: step \d+: {name} lost contact with another worker \([a-z ]+\); "
                                          rf"{kept}: start every worker again with the same command to resume", err[0])
    newest = checkpoints_on_disk(run)[-1]
    again = Launched(run, "again", COMMON + ["--data_dir", str(run_dir / "data"), "--save_every", "2",
                                             "--max_steps", str(newest + 1)], tmpdir)
    assert again.wait() == 0, again.lines("err")[-20:]
    loaded = f" [*] Load SUCCESS: checkpoint/mnist_16_28/CoGAN.model-{newest} (step {newest - 1})"
    assert loaded in again.lines("out", 0)
    assert checkpoints_on_disk(run)[-1] == newest + 2 and leftovers(tmpdir) == []


def test_the_launcher_kills_a_worker_still_running_after_the_grace_period(run_dir):
    """Worker 0 frozen (SIGSTOP: it can neither stop nor notice), worker 1 killed: the launcher waits
    --grace_seconds, kills worker 0 and exits with the first failure's status, 128 + SIGKILL."""
    run, tmpdir = str(run_dir / "run"), run_dir / "tmp"
    launched = Launched(run, "run", COMMON + ["--data_dir", str(run_dir / "data"), "--max_steps", "400"], tmpdir,
                        grace=5)
    launched.wait_for_steps(2)
    chief, other = launched.pids()
    os.kill(chief, signal.SIGSTOP)
    os.kill(other, signal.SIGKILL)
    assert launched.wait() == 128 + signal.SIGKILL
    assert launched.lines("err")[-2:] == [" [!] worker 1 failed with status 137: the others get 5 s to stop",
                                          " [!] killed worker 0, still running 5 s after worker 1 ended"]


def test_a_killed_launcher_leaves_a_checkpoint_of_the_step(run_dir):
    """SIGKILL to the launcher: its workers' output pipes close (and each gets SIGTERM from the system), and
    they stop after the same step with a checkpoint of it. They used to die of BrokenPipeError, leaving
    only the first checkpoint."""
    run, tmpdir = str(run_dir / "run"), run_dir / "tmp"
    launched = Launched(run, "run", COMMON + ["--data_dir", str(run_dir / "data"), "--max_steps", "400"], tmpdir)
    launched.wait_for_steps(5)
    pids = launched.pids()
    seen = launched.steps()
    launched.proc.kill()
    deadline = time.time() + TIMEOUT
    while any(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read()
              for pid in pids):
        assert time.time() < deadline, "workers still running after the launcher was killed"
        time.sleep(0.5)
    assert checkpoints_on_disk(run)[-1] >= seen + 1 > 2, checkpoints_on_disk(run)
    assert leftovers(tmpdir) == []


def test_a_stuck_worker_ends_the_run_in_one_line_after_the_bound(tmp_path):
    """Worker 1 alive but stuck (asleep between two steps, its heartbeats still going): the chief's step
    waits for it until the watchdog's bound (5 s here, 600 by default) ends the wait; the chief then stops
    in one line naming the timeout, long before worker 1 wakes."""
    run = {"train": train_kwargs(".", max_steps=40, save_every=2, strategy="multiworker")}
    cwds = [str(tmp_path / f"w{i}") for i in range(2)]
    args = dict(root=ROOT, runs=[run], out="lines.json", stall={"worker": 1, "at": 3, "seconds": 300}, bound=5)
    procs = start_workers([[sys.executable, "-c", WORKER, json.dumps(args)]] * 2, cwds, tmp_path)
    try:
        procs[0].wait(timeout=240)
    finally:
        for p in procs:
            p.kill()
    err = read(cwds[0], "w0.err")
    assert procs[0].returncode == 1 and re.search(r"RunStopped: step \d+: the chief lost contact with another worker "
                                                  r"\(timed out\)", err), err[-3000:]
