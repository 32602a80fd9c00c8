"""Two real workers from the launcher for a few hundred steps: each worker's thread count stays flat.

TensorFlow's per-collective timeout kept one sleeping thread per collective for the whole timeout, about
30 new threads a CoGAN step (240 with --sync_batchnorm), and a run of the default length ran out of them
(cogan_tf/multiworker.py). In the default suite so that the next leak of anything that grows with the
steps fails CI; about two minutes here.
"""

import os
import re
import subprocess
import sys
import time

from tests.conftest import ROOT, write_fake_dataset

STEPS = 300
LINE = re.compile(r"\[worker 0\] Epoch: \[ *(\d+)\] \[ *(\d+)/ *(\d+)\]")


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_two_workers_thread_counts_do_not_grow_with_the_steps(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=64, n_test=8)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")}
    p = subprocess.Popen([sys.executable, "-m", "cogan_tf", "launch", "--workers", "2", "--threads_per_worker", "1",
                          "--", "--batch_size", "8", "--epoch", "1000", "--max_steps", str(STEPS), "--save_every", "0",
                          "--data_dir", data_dir, "--checkpoint_dir", "ck", "--sample_dir", "s", "--log_dir", "l",
                          "--export_dir", "e"],
                         cwd=str(tmp_path), env=dict(env, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = [int(x) for x in re.findall(r"\d+", p.stderr.readline().split("pids")[1])]
        counts = {}
        deadline = time.time() + 900
        for line in p.stdout:
            m = LINE.match(line)
            if m:
                step = int(m.group(1)) * int(m.group(3)) + int(m.group(2)) + 1
                if step in (50, STEPS - 1):
                    counts[step] = [threads(pid) for pid in pids]
            assert time.time() < deadline, "two workers still training after 900 s"
        p.wait(timeout=300)
        assert p.returncode == 0, p.stderr.read()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
    early, late = counts[50], counts[STEPS - 1]
    print(f"threads at step 50: {early}; at step {STEPS - 1}: {late}")
    # Before the fix: about 30 more each step, 7,000 more here.
    assert all(b - a <= 40 for a, b in zip(early, late)), (early, late)
