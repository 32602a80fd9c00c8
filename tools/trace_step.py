"""Where a benchmark row's step spends its time: a few calls of the step traced with TensorFlow's profiler,
and the time of its ops summed by kind (convolutions, matmuls with and without a transposed second
operand, the written dense input gradients, Adam, the rest), with the longest single ops. The ClusterGAN
paper recipe's critic and G+E updates, docs/PERFORMANCE.md:

    python tools/trace_step.py                                        # paper_critic and paper_critic_plain
    python tools/trace_step.py --rows paper_ge,paper_ge_plain --calls 4

A row is a key of ``cogan_tf.bench.STEPS`` (the ``_plain`` rows: the step with Keras's own layer
gradients), or ``cogan_paper`` (the CoGAN's ``--recipe paper`` step; ``--batch 128``, its batch):

    python tools/trace_step.py --rows cogan_paper,cogan_paper_plain --batch 128 The step is built as the benchmark builds it (random uint8 inputs on the device, batch 64
by default), warmed up, then ``--calls`` calls are traced. TensorFlow runs the step's ops one at a time
(``--inter_op_threads 1``, each op on both cores), so that their times add up to the step's. Also
shown: the time of the matmuls and convolutions whose gradient operand is exactly zero in the graph
(followed from the ``zeros_like`` that TensorFlow's second derivative of LeakyReLU returns): work whose
results are zeros.
"""

from __future__ import annotations

import collections
import glob
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cogan_tf import cli  # noqa: E402

# Ops whose output is zero when one input is (products, and what only moves or reduces a gradient).
ZERO_IF_ANY = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
               "LeakyReluGrad", "ReluGrad", "Mul", "Reshape", "Identity", "IdentityN", "BiasAddGrad", "Sum",
               "Transpose", "ExpandDims", "Squeeze")
ZERO_IF_ALL = ("AddN", "AddV2", "Add")


def is_zeros(op) -> bool:
    """A tensor of zeros by construction: ``zeros_like`` in a graph is ZerosLike, or, for a known shape,
    a Fill with 0 or a constant of zeros."""
    import numpy as np
    from tensorflow.python.framework import tensor_util

    if op.type == "ZerosLike":
        return True
    if op.type == "Fill" and op.inputs[1].op.type == "Const":
        return not np.any(tensor_util.MakeNdarray(op.inputs[1].op.get_attr("value")))
    if op.type == "Const" and op.outputs[0].dtype.is_floating and op.outputs[0].shape.rank:
        return not np.any(tensor_util.MakeNdarray(op.get_attr("value")))
    return False


def zero_ops(graph) -> set:
    """Names of the ops of ``graph`` whose output is exactly zero: tensors of zeros (:func:`is_zeros`),
    and from them through products and reshapes with a zero operand, and sums all of whose terms are."""
    zero = {op.name for op in graph.get_operations() if is_zeros(op)}
    changed = True
    ops = graph.get_operations()
    while changed:
        changed = False
        for op in ops:
            if op.name in zero:
                continue
            ins = [t.op.name in zero for t in op.inputs if t.dtype.is_floating]
            if (op.type in ZERO_IF_ANY and any(ins)) or (op.type in ZERO_IF_ALL and ins and all(ins)):
                zero.add(op.name)
                changed = True
    return zero


def kind(name: str, runtime_type: str, graph_ops: dict) -> str:
    op = graph_ops.get(name)
    if name.split("/")[0].startswith("adam"):
        return "Adam updates (elementwise)"
    if "BatchMatMul" in runtime_type:
        return "BatchMatMulV2 (the written dense input gradients)"
    if "MatMul" in runtime_type:
        if op is not None and op.type == "MatMul" and op.get_attr("transpose_b") and not op.get_attr("transpose_a"):
            return "MatMul, second operand transposed (dense input gradients)"
        return "MatMul, other (forward, weight gradients)"
    if "Conv" in runtime_type:
        return "convolutions (forward and gradients)"
    return "other (BatchNorm, activations, reductions, sums of gradients)"


def trace_row(row: str, batch: int, warmup: int, calls: int, top: int) -> None:
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from cogan_tf import bench

    if row.startswith("cogan_"):  # the CoGAN's --recipe paper rows
        gan, inputs = bench.make_model("cogan", batch, False, model_overrides=bench.C.COGAN_RECIPES["paper"])
    else:
        gan, inputs = bench.make_model("clustergan", batch, False, model_overrides=bench.PAPER)
    fn = tf.function(gan.train_step if row == "cogan_paper" else bench.STEPS[row](gan))
    graph = fn.get_concrete_function(*inputs).graph
    graph_ops = {op.name: op for op in graph.get_operations()}
    zero = zero_ops(graph)
    for _ in range(warmup):
        bench.sync(fn(*inputs))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        bench.sync(fn(*inputs))
        times.append(time.perf_counter() - t0)
    space = xplane_pb2.XSpace()
    with tempfile.TemporaryDirectory(prefix="trace_step_") as logdir:  # the trace, read and removed
        tf.profiler.experimental.start(logdir)
        t0 = time.perf_counter()
        for _ in range(calls):
            out = fn(*inputs)
        bench.sync(out)
        traced = (time.perf_counter() - t0) / calls
        tf.profiler.experimental.stop()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    per_op: dict = collections.defaultdict(float)
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for ev in line.events:
                label = plane.event_metadata[ev.metadata_id].name
                name, _, kernel = label.rpartition(":")
                if name and kernel and not name.endswith(":"):  # "<op name>:<kernel>", not the executor's own
                    per_op[label] += ev.duration_ps / 1e9 / calls
    kinds: dict = collections.Counter()
    on_zeros = 0.0
    for label, ms in per_op.items():
        name, runtime_type = label.rsplit(":", 1)
        kinds[kind(name, runtime_type, graph_ops)] += ms
        if name in zero and ("MatMul" in runtime_type or "Conv" in runtime_type):
            on_zeros += ms
    total = sum(per_op.values())
    print(f"\n{row} (batch {batch}): {statistics.median(times) * 1e3:.1f} ms a step untraced (median of {calls}), "
          f"{traced * 1e3:.1f} ms traced; its ops' times add up to {total:.1f} ms")
    for k, ms in kinds.most_common():
        print(f"  {ms:7.1f} ms  {100 * ms / total:4.0f}%  {k}")
    print(f"  of which matmuls and convolutions of a gradient that is exactly zero: {on_zeros:.1f} ms "
          f"({100 * on_zeros / total:.0f}%)")
    print(f"  the {top} longest ops:")
    for label, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]:
        name, runtime_type = label.rsplit(":", 1)
        print(f"  {ms:7.1f} ms  {name}  [{runtime_type}]" + ("  (zero gradient)" if name in zero else ""))


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="paper_critic,paper_critic_plain",
                    help="comma-separated keys of cogan_tf.bench.STEPS, or cogan_paper [paper_critic,paper_critic_plain]")
    ap.add_argument("--batch", type=int, default=64, help="batch size [64, the paper recipe's]")
    ap.add_argument("--warmup", type=int, default=3, help="untraced calls first (the first traces the step) [3]")
    ap.add_argument("--calls", type=int, default=4, help="calls timed, then as many traced [4]")
    ap.add_argument("--top", type=int, default=12, help="how many of the longest ops to list [12]")
    ap.add_argument("--inter_op_threads", type=int, default=1,
                    help="TensorFlow inter-op threads; 1: one op at a time, their times add up [1]")
    args = ap.parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    for name, value, low in (("batch", args.batch, 1), ("warmup", args.warmup, 1), ("calls", args.calls, 1),
                             ("top", args.top, 0), ("inter_op_threads", args.inter_op_threads, 0)):
        if value < low:
            ap.error(f"--{name}={value}: must be {low} or more")
    from cogan_tf import bench

    unknown = [r for r in rows if r not in bench.STEPS and r != "cogan_paper"]
    if unknown or not rows:
        ap.error(f"--rows={args.rows}: choose from {', '.join(bench.STEPS)}, cogan_paper")
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        # On a GPU the profiler's host events are kernel launches, which say nothing of the kernels' time.
        print("error: this tool sums host (CPU) op times; on a GPU those are kernel launches: run it with "
              "CUDA_VISIBLE_DEVICES='' for the CPU, or read the GPU's kernels in TensorBoard's profile", file=sys.stderr)
        return 2
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    for row in rows:
        trace_row(row, args.batch, args.warmup, args.calls, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
