"""The training loop's host work per step: the time between two of the loop's per-step lines (``train.fit``:
tf.data, the compiled step, fetching its losses, the log line, TensorBoard scalars, the stop check) against the
compiled step alone on data already on the device, waited for once per call. On a GPU the step is short and
what the host does between steps can be most of it; on a CPU it is measured here.

    python tools/host_overhead.py --models vanilla,cogan --batch_size 32 --steps 200 --rounds 3

Each round times the bare step and then the loop, ``--steps`` timed steps each after a warm-up; the table has
the medians over all rounds' steps, and the host work as the median of the rounds' differences (the machine's
load moves both within a round alike). docs/PERFORMANCE.md, "The step's host work", has the figures.
"""

import statistics
import sys

from absl import flags

from cogan_tf import cli


def define_flags():
    flags.DEFINE_list("models", ["vanilla", "cogan"], "Models to measure [vanilla,cogan]")
    flags.DEFINE_integer("batch_size", 32, "Batch size of every model (small: a short step shows the host's "
                         "share) [32]")
    flags.DEFINE_integer("steps", 200, "Timed steps per round, loop and bare step each [200]")
    flags.DEFINE_integer("warmup", 5, "Untimed steps first [5]")
    flags.DEFINE_integer("rounds", 3, "Rounds of loop + bare step [3]")


def main(argv):
    f = flags.FLAGS
    cli.start_tensorflow()
    from cogan_tf.bench.rows import make_model, time_loop
    from cogan_tf.bench.machine import time_calls

    rows = []
    for name in f.models:
        loop, bare, diffs = [], [], []
        gan, inputs = make_model(name, f.batch_size, jit_compile=False)
        step = gan.compiled_step()
        for r in range(f.rounds):
            b = time_calls(step, inputs, warmup=f.warmup, steps=f.steps)["times_s"]
            lo = time_loop(name, f.batch_size, False, f.warmup, f.steps, seed=r)["times_s"]
            bare, loop = bare + b, loop + lo
            diffs.append(statistics.median(lo) - statistics.median(b))
            print(f"{name} round {r + 1}: loop {statistics.median(lo) * 1e3:.2f} ms, bare step "
                  f"{statistics.median(b) * 1e3:.2f} ms", file=sys.stderr, flush=True)
        rows.append((name, statistics.median(loop) * 1e3, statistics.median(bare) * 1e3,
                     statistics.median(diffs) * 1e3))
    print("| model | batch | loop ms/step | bare step ms | host work ms/step (median of rounds) | share of the loop |")
    print("|---|---|---|---|---|---|")
    for name, lo, ba, d in rows:
        print(f"| {name} | {f.batch_size} | {lo:.2f} | {ba:.2f} | {d:.2f} | {100 * d / lo:.0f}% |")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
