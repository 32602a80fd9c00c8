"""Where a benchmark row's training step spends its time: a few calls traced with TensorFlow's profiler, the
ops' times summed by kind (convolutions, matmuls, the dense input gradients, BatchNorm, elementwise ops,
Adam...) with the FLOPs TensorFlow counts for each and the rate they ran at, against a float32 matmul timed in
the same process, and the longest single ops (``cogan_tf/bench/trace.py``; docs/PERFORMANCE.md):

    python tools/trace_step.py                                              # the CoGAN step, cogan:port
    python tools/trace_step.py --rows cogan:port,cogan:plain_grads --calls 4
    python tools/trace_step.py --rows clustergan:paper_critic,clustergan:paper_critic_plain
    python tools/trace_step.py --rows cogan:paper --batch 128

A row is MODEL:VARIANT, a row of ``python -m cogan_tf.bench`` (its --cogan_variants, the ClusterGAN paper
recipe's paper_critic, paper_ge and their _plain, _bf16, _xla forms, paper_cycle), at its batch unless --batch
says otherwise. TensorFlow runs the step's ops one at a time (--inter_op_threads 1, each op on all cores), so
that their times add up to the step's. Also shown: the time of the matmuls and convolutions whose gradient
operand is exactly zero in the graph (followed from the zeros_like that TensorFlow's second derivative of
LeakyReLU returns): work whose results are zeros.
"""

from __future__ import annotations

import os

from absl import flags

from cogan_tf import cli
from cogan_tf.errors import UsageError


def define_flags():
    flags.DEFINE_string("rows", "cogan:port", "Comma-separated MODEL:VARIANT rows of the benchmark [cogan:port]")
    flags.DEFINE_integer("batch", 0, "Batch size; 0: each row's own (the benchmark's) [0]")
    flags.DEFINE_integer("warmup", 3, "Untraced calls first (the first traces the step) [3]")
    flags.DEFINE_integer("calls", 4, "Calls timed, then as many traced [4]")
    flags.DEFINE_integer("top", 12, "How many of the longest ops to list [12]")
    flags.DEFINE_integer("matmul_n", 2048, "Side of the float32 matmul timed for the rate to compare with; 0: none "
                         "[2048]")
    flags.DEFINE_integer("inter_op_threads", 1, "TensorFlow inter-op threads; 1: one op at a time, their times add "
                         "up [1]")


def main(argv) -> int:
    f = flags.FLAGS
    for name, low in (("batch", 0), ("warmup", 1), ("calls", 1), ("top", 0), ("matmul_n", 0),
                      ("inter_op_threads", 0)):
        if getattr(f, name) < low:
            raise UsageError(f"--{name}={getattr(f, name)}: must be {low} or more")
    from cogan_tf.bench import rows as bench_rows

    rows = [r.partition(":")[::2] for r in f.rows.split(",") if r]
    choices = ", ".join(f"{m}:{v}" for m in bench_rows.ALL_MODELS for v in bench_rows.row_variants(m))
    if not rows or any(m not in bench_rows.ALL_MODELS or v not in bench_rows.row_variants(m) for m, v in rows):
        raise UsageError(f"--rows={f.rows}: choose from {choices}")
    # Not cli.start_tensorflow(): its device probe starts the runtime, after which the inter-op threads are fixed.
    import tensorflow as tf

    from cogan_tf.bench import trace

    if f.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(f.inter_op_threads)
    if tf.config.list_physical_devices("GPU") and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        # On a GPU the profiler's host events are kernel launches, which say nothing of the kernels' time.
        raise UsageError("this tool sums host (CPU) op times; on a GPU those are kernel launches: run it with "
                         "CUDA_VISIBLE_DEVICES='' for the CPU, or read the GPU's kernels in TensorBoard's profile")
    for model, variant in rows:
        t = trace.trace_step(model, variant, f.batch, f.warmup, f.calls, f.matmul_n)
        print()
        print(trace.format_trace(t, f.top))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
