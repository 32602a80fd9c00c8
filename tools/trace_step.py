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
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cogan_tf import cli  # noqa: E402


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="cogan:port", help="comma-separated MODEL:VARIANT rows of the benchmark "
                    "[cogan:port]")
    ap.add_argument("--batch", type=int, default=0, help="batch size; 0: each row's own (the benchmark's) [0]")
    ap.add_argument("--warmup", type=int, default=3, help="untraced calls first (the first traces the step) [3]")
    ap.add_argument("--calls", type=int, default=4, help="calls timed, then as many traced [4]")
    ap.add_argument("--top", type=int, default=12, help="how many of the longest ops to list [12]")
    ap.add_argument("--matmul_n", type=int, default=2048, help="side of the float32 matmul timed for the rate to "
                    "compare with; 0: none [2048]")
    ap.add_argument("--inter_op_threads", type=int, default=1,
                    help="TensorFlow inter-op threads; 1: one op at a time, their times add up [1]")
    args = ap.parse_args(argv)
    for name, value, low in (("batch", args.batch, 0), ("warmup", args.warmup, 1), ("calls", args.calls, 1),
                             ("top", args.top, 0), ("matmul_n", args.matmul_n, 0),
                             ("inter_op_threads", args.inter_op_threads, 0)):
        if value < low:
            ap.error(f"--{name}={value}: must be {low} or more")
    from cogan_tf.bench import rows as bench_rows

    rows = [r.partition(":")[::2] for r in args.rows.split(",") if r]
    choices = ", ".join(f"{m}:{v}" for m in bench_rows.ALL_MODELS for v in bench_rows.row_variants(m))
    if not rows or any(m not in bench_rows.ALL_MODELS or v not in bench_rows.row_variants(m) for m, v in rows):
        ap.error(f"--rows={args.rows}: choose from {choices}")
    import tensorflow as tf

    from cogan_tf.bench import trace

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    if tf.config.list_physical_devices("GPU") and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        # On a GPU the profiler's host events are kernel launches, which say nothing of the kernels' time.
        print("error: this tool sums host (CPU) op times; on a GPU those are kernel launches: run it with "
              "CUDA_VISIBLE_DEVICES='' for the CPU, or read the GPU's kernels in TensorBoard's profile", file=sys.stderr)
        return 2
    for model, variant in rows:
        t = trace.trace_step(model, variant, args.batch, args.warmup, args.calls, args.matmul_n)
        print()
        print(trace.format_trace(t, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
