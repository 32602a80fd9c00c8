"""What --strategy multiworker costs on one machine: CoGAN training steps/s of one process with two
threads against two workers with one thread each (python -m cogan_tf.launch), with and without
--sync_batchnorm, run for real through main.py (tf.data, the per-step loss read-back and log line, the
workers' per-step stop agreement), interleaved A, B, C, A, B, C, ... so each configuration sees the
same share of whatever else loads the machine; ratios are taken within a round. docs/PERFORMANCE.md:

    python tools/multiworker_bench.py                 # 3 rounds, 60 steps each, batch 128
    python tools/multiworker_bench.py --rounds 5 --steps 100 --out multiworker_bench.json

Each run trains in a temporary folder on random MNIST-shaped data (the step's cost does not depend on
the pixels). A run's rate is taken from its log lines' elapsed time, over the steps after --warmup
(the first traces and compiles the step): steps / seconds, and the median step time. Also printed: the
gradient bytes each step all-reduces, from the parameter count, which is what a network between
machines carries, and how many all-reduces the step makes (counted in its graph, traced by two workers),
each of which costs a round trip whatever its size.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags

from cogan_tf import cli, data, fileio, launch
from cogan_tf.errors import UsageError

CONFIGS = {
    "one process x 2 threads": {"workers": 0, "flags": []},
    "2 workers x 1 thread": {"workers": 2, "flags": []},
    "2 workers x 1 thread, --sync_batchnorm": {"workers": 2, "flags": ["--sync_batchnorm"]},
}


def fake_mnist(data_dir: str, n_train: int, n_test: int = 64) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = data.SPLIT_FILES[split]
        data.write_idx(os.path.join(data_dir, "mnist", images), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        data.write_idx(os.path.join(data_dir, "mnist", labels), rng.integers(0, 10, n, dtype=np.uint8))


def run_once(config: dict, data_dir: str, args) -> dict:
    folder = tempfile.mkdtemp(prefix="multiworker-bench-")
    main_flags = ["--data_dir", data_dir, "--batch_size", str(args.batch_size), "--max_steps", str(args.steps),
                  "--save_every", "0", "--log_every", "1"] + config["flags"]
    env = launch.package_first(os.environ)  # the package this process imported, in every run
    if config["workers"]:
        command = [sys.executable, "-m", "cogan_tf", "launch", "--workers", str(config["workers"]),
                   "--threads_per_worker", "1", "--"] + main_flags
    else:
        command = [sys.executable, "-m", "cogan_tf", "main"] + main_flags
        env.update(TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="2")
    load = os.getloadavg()[0]
    try:
        r = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if r.returncode:
        raise SystemExit(f"{command}: exit {r.returncode}\n{r.stderr[-3000:]}")
    times = [float(m.group(1)) for m in re.finditer(r"Epoch: .* time: ([0-9.]+),", r.stdout)]
    if len(times) != args.steps:
        raise SystemExit(f"{command}: {len(times)} step lines, expected {args.steps}")
    timed = times[args.warmup - 1:]
    per_step = np.diff(timed)
    return {"steps_per_s": len(per_step) / (timed[-1] - timed[0]), "median_step_s": float(np.median(per_step)),
            "first_step_s": times[0], "load_at_start": load}


def gradient_bytes(batch_size: int) -> dict:
    """Parameters of G and D, and the float32 gradient bytes one CoGAN step all-reduces (D's once, G's
    once per G update)."""
    import keras

    from cogan_tf import config as C, runner

    gan = runner.make_gan(C.CoganConfig(), C.TrainConfig(batch_size=batch_size, checkpoint_dir=tempfile.gettempdir()),
                          arrays=[None, None])
    keras.utils.set_random_seed(0)
    gan.build()
    g = sum(int(np.prod(v.shape)) for v in gan.g_vars)
    d = sum(int(np.prod(v.shape)) for v in gan.d_vars)
    per_step = 4 * (d + gan.model_cfg.g_updates_per_step * g)
    return {"g_params": g, "d_params": d, "g_updates_per_step": gan.model_cfg.g_updates_per_step,
            "gradient_bytes_per_step": per_step}


# Traced by each of two workers: the collective ops in the CoGAN step's graph, without and with --sync_batchnorm.
# The global batch comes in COUNT_BATCH_SIZE.
COUNT = r"""
import collections, json, os
import numpy as np
import tensorflow as tf
from cogan_tf import config as C, data, gan as gan_lib, multiworker, runner, tf_config
batch = int(os.environ["COUNT_BATCH_SIZE"])
strategy = multiworker.make_strategy()
x = np.zeros((2 * batch, 28, 28, 1), np.uint8)
counts = {}
for sync in (False, True):
    gan = runner.make_gan(C.CoganConfig(sync_batchnorm=sync), C.TrainConfig(batch_size=batch,
                          strategy="multiworker", checkpoint_dir="/nonexistent"), arrays=[x, x], strategy=strategy)
    gan_lib.build_gan(gan)
    ds = multiworker.Workers(strategy, tf_config.role("multiworker")).distribute(
        lambda: data.make_dataset([x, x], batch), batch)
    graph = tf.function(gan.train_step).get_concrete_function(*next(iter(ds))).graph
    ops = collections.Counter()
    for g in [graph] + [f.graph for f in graph._functions.values() if hasattr(f, "graph")]:
        ops.update(op.type for op in g.get_operations() if op.type.startswith("Collective"))
    counts["sync_batchnorm" if sync else "default"] = sum(ops.values())
print(json.dumps(counts))
"""


def collectives_per_step(batch_size: int) -> dict:
    addresses = [f"localhost:{p}" for p in launch.free_ports(2)]
    procs = [subprocess.Popen([sys.executable, "-c", COUNT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=dict(launch.worker_env(os.environ, addresses, i, threads=0),
                                                  TF_CPP_MIN_LOG_LEVEL="3", COUNT_BATCH_SIZE=str(batch_size)))
             for i in range(2)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("counting the step's collectives failed")
    return json.loads(outs[0].strip().splitlines()[-1])


def define_flags():
    flags.DEFINE_integer("rounds", 3, "Rounds of every configuration in turn [3]")
    flags.DEFINE_integer("steps", 60, "Training steps per run [60]")
    flags.DEFINE_integer("warmup", 10, "Steps left out of the rate, the first among them [10]")
    flags.DEFINE_integer("batch_size", 128, "The global batch [128, the CoGAN's]")
    flags.DEFINE_string("out", None, "Also write the results as JSON here [none]")


def main(argv) -> int:
    args = flags.FLAGS
    # Every refusal before the first run (minutes of work whose results an unwritable --out would lose).
    for name, value in (("rounds", args.rounds), ("batch_size", args.batch_size)):
        if value < 1:
            raise UsageError(f"--{name}={value}: must be at least 1")
    if not 1 <= args.warmup < args.steps - 1:
        raise UsageError(f"--warmup={args.warmup} with --steps={args.steps}: the warm-up must be at least 1 step and "
                         "leave two timed steps")
    cli.check_outputs([("--out", args.out)])
    data_dir = tempfile.mkdtemp(prefix="multiworker-bench-data-")
    try:
        fake_mnist(data_dir, n_train=args.batch_size * (args.steps + 1))
        rounds = []
        for r in range(args.rounds):
            row = {}
            for name, config in CONFIGS.items():
                row[name] = run_once(config, data_dir, args)
                print(f"round {r + 1}: {name}: {row[name]['steps_per_s']:.3f} steps/s "
                      f"(median step {row[name]['median_step_s']:.3f} s, load {row[name]['load_at_start']:.1f})",
                      flush=True)
            rounds.append(row)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    base = next(iter(CONFIGS))
    summary = {name: {"steps_per_s": [row[name]["steps_per_s"] for row in rounds],
                      "ratio_to_one_process": [row[name]["steps_per_s"] / row[base]["steps_per_s"] for row in rounds]}
               for name in CONFIGS}
    given = [fl.serialize() for fl in args.get_flags_for_module(__name__) if fl.present]  # this tool's flags
    result = {"command": shlex.join(["python", "tools/multiworker_bench.py"] + given),
              "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "rounds": rounds,
              "summary": summary, "model": gradient_bytes(args.batch_size),
              "collectives_per_step": collectives_per_step(args.batch_size), "cpus": os.cpu_count(),
              "finished": time.strftime("%Y-%m-%d %H:%M")}
    print("\n| configuration | steps/s per round | median | vs one process (median of the rounds' ratios) |")
    print("|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {', '.join(f'{v:.3f}' for v in s['steps_per_s'])} | {statistics.median(s['steps_per_s']):.3f}"
              f" | {statistics.median(s['ratio_to_one_process']):.2f} |")
    m = result["model"]
    print(f"\nG {m['g_params']:,} and D {m['d_params']:,} parameters: {m['gradient_bytes_per_step'] / 1e6:.1f} MB of "
          "float32 gradients all-reduced per step")
    c = result["collectives_per_step"]
    print(f"all-reduces per step: {c['default']}, {c['sync_batchnorm']} with --sync_batchnorm")
    if args.out:
        fileio.atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
