"""Where a benchmark row's step spends its time (``python tools/trace_step.py``): a few calls of the step traced
with TensorFlow's profiler, each op's time, and the ops summed by kind, with the FLOPs of the matmuls and
convolutions (TensorFlow's own per-op count, as the benchmark's cross-check reads it) and the rate they run at,
against a float32 matmul measured in the same process.

The step is built as the benchmark builds it (:func:`cogan_tf.bench.rows.make_model`, random uint8 inputs on the
device). Its ops are matched to the traced events by name: oneDNN's fused kernels (a matmul or convolution with
its bias and activation) carry the name of the fusion's last op, so the FLOPs of such an event are those of
the matmul or convolution it starts from. TensorFlow should run the ops one at a time (one inter-op thread) for
their times to add up to the step's.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Tuple

MATMUL_CONV = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
# What oneDNN fuses into a matmul or convolution (the event then bears the last op's name).
FUSED_TAILS = ("IdentityN", "BiasAdd", "AddV2", "Add", "Sigmoid", "Tanh", "Relu", "LeakyRelu", "Squeeze", "Reshape",
               "Identity")
DATA_MOVEMENT = ("Transpose", "DepthToSpace", "ConcatV2", "GatherV2", "Slice", "StridedSlice", "StridedSliceGrad",
                 "Pad", "Reshape", "BroadcastTo", "Tile", "Pack", "Unpack", "Split", "SplitV")
# The kinds, in the order of the table.
KINDS = ("conv forward", "transposed conv forward", "conv input gradients", "conv filter gradients",
         "matmul forward", "dense input gradients (dy @ W^T)", "matmul weight gradients", "BatchNorm",
         "activations (PReLU, LeakyReLU)", "XLA clusters (fused activations and BatchNorm)",
         "elementwise (bias, sigmoid, losses, sums of gradients)",
         "data movement (transpose, concat, slices)", "Adam updates", "other (variable reads, random numbers, bookkeeping)")
# How a compiled XLA cluster's run appears on TensorFlow's compute threads (its kernels run inside it).
XLA_RUN = "ExecutorState::ProcessAsync::Start"
# The name scopes the written gradients' ops are made in (cogan_tf/layers.py, paper_layers.py): their kind.
GRADIENT_SCOPES = {"batchnorm_grad": "BatchNorm", "prelu_grad": "activations (PReLU, LeakyReLU)"}

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


def op_flops(op) -> int:
    """TensorFlow's FLOP count of one op (0 where it registers none)."""
    from tensorflow.python.framework import ops as ops_lib

    try:
        return int(ops_lib.get_stats_for_node_def(op.graph, op.node_def, "flops").value or 0)
    except ValueError:
        return 0


def matmul_of(op, depth: int = 4):
    """The matmul or convolution a traced event of ``op`` computes: ``op`` itself, or, for an op oneDNN fuses
    into one (bias, activation, the custom gradients' IdentityN), the first such op up its first inputs."""
    for _ in range(depth):
        if op.type in MATMUL_CONV:
            return op
        if op.type not in FUSED_TAILS or not op.inputs:
            return None
        op = op.inputs[0].op
    return op if op.type in MATMUL_CONV else None


def runs_matmul(runtime_type: str) -> bool:
    """Whether a kernel computes a matmul or a convolution (oneDNN's fused ones included)."""
    return "MatMul" in runtime_type or "Conv2D" in runtime_type


def graph_op(graph_ops: dict, name: str):
    """The graph op a traced event's ``name`` is, also where TensorFlow inlined a function (a conditional's
    branch: ``<cond>/then/_0/<the branch's op name>``); None if there is none."""
    parts = name.split("/")
    while parts:
        op = graph_ops.get("/".join(parts))
        if op is not None:
            return op
        inlined = [i for i, p in enumerate(parts) if i and p.startswith("_") and p[1:].isdigit()]
        if not inlined:
            return None
        parts = parts[inlined[0] + 1:]
    return None


def backward_ops(graph) -> set:
    """The ops of ``graph`` in a backward pass: those of a gradient tape's scope, and those computed from them
    (a custom gradient's ops are not in the tape's scope). Control dependencies are not followed: an update's
    forward pass reads the variables the previous update assigned."""
    back = set()
    ops = graph.get_operations()
    changed = True
    while changed:
        changed = False
        for op in ops:
            if op not in back and ("gradient_tape" in op.name.split("/") or any(t.op in back for t in op.inputs)):
                back.add(op)
                changed = True
    return back


def op_kind(name: str, runtime_type: str, op, scopes: Dict[str, Tuple[str, ...]], backward: set) -> str:
    """The kind (:data:`KINDS`) of a traced op: its name ``name``, the kernel that ran ``runtime_type``, its
    graph op ``op`` (None if the graph has no op of that name), the name scopes of the layers of a kind
    (:func:`layer_scopes`), and the ops of the backward passes (:func:`backward_ops`)."""
    parts = name.split("/")
    grad = op in backward if op is not None else "gradient_tape" in parts
    mm = matmul_of(op) if op is not None and runs_matmul(runtime_type) else None
    mm_type = mm.type if mm is not None else next((t for t in reversed(MATMUL_CONV) if t in runtime_type), None)
    if runtime_type == "XlaRun":
        return "XLA clusters (fused activations and BatchNorm)"
    if "adam" in parts[0]:
        return "Adam updates"
    if mm_type is not None:
        if "Conv2DBackpropFilter" in mm_type:
            return "conv filter gradients"
        if mm_type.startswith("Conv2D"):
            if grad:
                return "conv input gradients"
            return "transposed conv forward" if mm_type == "Conv2DBackpropInput" else "conv forward"
        if "BatchMatMul" in mm_type:
            return "dense input gradients (dy @ W^T)"
        if mm is not None and mm.get_attr("transpose_b") and not mm.get_attr("transpose_a"):
            return "dense input gradients (dy @ W^T)"
        if mm is not None and mm.get_attr("transpose_a"):
            return "matmul weight gradients"
        return "matmul forward"
    if "BatchNorm" in runtime_type:
        return "BatchNorm"
    for part in parts:
        base = part.rstrip("0123456789").rstrip("_") if part[-1:].isdigit() else part  # name scopes made unique
        if base in GRADIENT_SCOPES:
            return GRADIENT_SCOPES[base]
        for k, prefixes in scopes.items():
            if part.startswith(prefixes):
                return k
    if "LeakyRelu" in runtime_type:
        return "activations (PReLU, LeakyReLU)"
    base = runtime_type.replace("_MklNative", "").replace("_Mkl", "")
    if base in DATA_MOVEMENT:
        return "data movement (transpose, concat, slices)"
    if base in ("ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "Const",
                "NoOp", "Identity", "IdentityN", "RngReadAndSkip", "StatelessRandomNormalV2", "StatelessRandomUniformV2",
                "Bitcast", "Shape", "Fill"):
        return "other (variable reads, random numbers, bookkeeping)"
    return "elementwise (bias, sigmoid, losses, sums of gradients)"


@dataclasses.dataclass
class Trace:
    """One traced row: the step's untraced and traced time, and per op (by event label "<name>:<kernel>")
    its time a step, its kind and its FLOPs a step (0 where unknown), and whether its gradient operand is
    exactly zero."""

    row: str
    batch: int
    step_ms: float
    traced_ms: float
    ops: Dict[str, dict]
    matmul_gflops: Optional[float] = None

    @property
    def total_ms(self) -> float:
        return sum(o["ms"] for o in self.ops.values())

    def kinds(self) -> List[dict]:
        """Per kind: ms a step, share of the ops' time, FLOPs, and GFLOP/s where FLOPs are known."""
        acc = {k: {"kind": k, "ms": 0.0, "flops": 0, "ops": 0} for k in KINDS}
        for o in self.ops.values():
            a = acc[o["kind"]]
            a["ms"] += o["ms"]
            a["flops"] += o["flops"]
            a["ops"] += o["count"]
        total = self.total_ms
        out = []
        for a in acc.values():
            if a["ops"]:
                a["share"] = a["ms"] / total if total else 0.0
                a["gflops_per_s"] = a["flops"] / (a["ms"] * 1e6) if a["flops"] and a["ms"] else None
                out.append(a)
        return out

    def zero_ms(self) -> float:
        return sum(o["ms"] for o in self.ops.values() if o["zero"] and o["flops"])


def trace_step(model: str, variant: str, batch: int = 0, warmup: int = 3, calls: int = 4,
               matmul_n: int = 2048) -> Trace:
    """Build the benchmark row ``model``/``variant`` (:func:`cogan_tf.bench.rows.row_variants`; ``batch`` 0: the
    row's default), warm its step up, time ``calls`` calls, trace as many, and time a float32 ``matmul_n``
    matmul (0: none)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from cogan_tf.bench import machine, rows as bench_rows, steps as step_lib

    row = find_row(model, variant, batch)
    gan, inputs = bench_rows.make_model(row.model, row.batch, row.jit_compile, mixed_precision=row.mixed_precision,
                                   model_overrides=row.model_overrides, adam=row.adam)
    fn = tf.function(step_lib.step_for(gan, row.variant, row.step), jit_compile=row.jit_compile)
    graph = fn.get_concrete_function(*inputs).graph
    graph_ops = {op.name: op for op in graph.get_operations()}
    backward = backward_ops(graph)
    for f in getattr(graph, "_functions", {}).values():  # a conditional's branches (ClusterGAN's G+E update)
        if getattr(f, "graph", None) is not None:
            backward |= backward_ops(f.graph)
            for op in f.graph.get_operations():
                graph_ops.setdefault(op.name, op)
    zero = zero_ops(graph)
    scopes = layer_scopes(gan)
    n = calls * row.cycle
    for _ in range(warmup * row.cycle):
        machine.sync(fn(*inputs))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        for _ in range(row.cycle):
            out = fn(*inputs)
        machine.sync(out)
        times.append((time.perf_counter() - t0) / row.cycle)
    space = xplane_pb2.XSpace()
    with tempfile.TemporaryDirectory(prefix="trace_step_") as logdir:  # the trace, read and removed
        tf.profiler.experimental.start(logdir)
        t0 = time.perf_counter()
        for _ in range(n):
            out = fn(*inputs)
        machine.sync(out)
        traced = (time.perf_counter() - t0) / n
        tf.profiler.experimental.stop()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    ops: Dict[str, dict] = {}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for ev in line.events:
                label = plane.event_metadata[ev.metadata_id].name
                name, _, kernel = label.rpartition(":")
                if label == XLA_RUN:  # a compiled cluster, launched and run (its op's name is not in the event)
                    name, kernel = "XLA clusters", "XlaRun"
                elif not name or not kernel or name.endswith(":"):  # "<op name>:<kernel>", not the executor's own
                    continue
                o = ops.get(label)
                if o is None:
                    op = graph_op(graph_ops, name)
                    mm = matmul_of(op) if op is not None and runs_matmul(kernel) else None
                    o = ops[label] = {"name": name, "kernel": kernel, "ms": 0.0, "count": 0,
                                      "kind": op_kind(name, kernel, op, scopes, backward),
                                      "flops": op_flops(mm) if mm is not None else 0,
                                      "zero": name in zero or (mm is not None and mm.name in zero)}
                o["ms"] += ev.duration_ps / 1e9 / n
                o["count"] += 1
    for o in ops.values():
        o["count"] /= n
        o["flops"] *= o["count"]  # an op of the graph runs once a call (its FLOPs are per run)
    mm = None
    if matmul_n:
        mm_times = machine.time_calls(machine.matmul_fn(matmul_n), (), warmup=2, steps=5)["times_s"]
        mm = machine.matmul_record(matmul_n, mm_times)["gflops"]
    return Trace(f"{row.model}:{row.variant}", row.batch, statistics.median(times) * 1e3, traced * 1e3, ops, mm)


def find_row(model: str, variant: str, batch: int = 0):
    """The benchmark's row ``variant`` of ``model`` at ``batch`` (0: the row's default)."""
    from cogan_tf.bench import rows as bench_rows

    if variant not in bench_rows.row_variants(model):
        raise ValueError(f"{model}:{variant}: no such row; choose from {', '.join(bench_rows.row_variants(model))}")
    if variant == "keras_adam":
        port = find_row(model, "port", batch)
        return dataclasses.replace(port, variant="keras_adam", adam="keras")
    if model == "clustergan" and variant != "port":
        rows = bench_rows.clustergan_paper_rows(batch or bench_rows.PAPER_BATCH, False, bench_rows.CLUSTERGAN_VARIANTS)
    else:
        rows = bench_rows.model_rows(model, batch or bench_rows.DEFAULT_BATCH[model], False, bench_rows.COGAN_VARIANTS)
    return next(r for r in rows if r.variant == variant)


def layer_scopes(gan) -> Dict[str, Tuple[str, ...]]:
    """The name scopes of the GAN's BatchNorm and activation layers, by kind (their ops' names start so)."""
    import keras

    from cogan_tf.layers import ScalarPReLU
    from cogan_tf.paper_layers import CaffeBatchNorm, ChannelPReLU

    models = [m for m in vars(gan).values() if isinstance(m, keras.Model)]
    layers = [layer for m in models for layer in m._flatten_layers()]
    kinds = {"BatchNorm": (keras.layers.BatchNormalization, CaffeBatchNorm),
             "activations (PReLU, LeakyReLU)": (ScalarPReLU, ChannelPReLU, keras.layers.LeakyReLU)}
    return {k: tuple(sorted({layer.name for layer in layers if isinstance(layer, classes)}))
            for k, classes in kinds.items()}


def format_trace(t: Trace, top: int = 12) -> str:
    """The op-kind table (markdown) and the ``top`` longest ops."""
    mm = t.matmul_gflops
    lines = [f"{t.row} (batch {t.batch}): {t.step_ms:.1f} ms a step untraced (median), {t.traced_ms:.1f} ms traced; "
             f"its ops add up to {t.total_ms:.1f} ms" + (f"; float32 matmul {mm:.1f} GFLOP/s" if mm else ""), "",
             "| op kind | ms | share | GFLOP | GFLOP/s | of matmul |", "|---|---|---|---|---|---|"]
    for k in t.kinds():
        rate = k["gflops_per_s"]
        lines.append(f"| {k['kind']} | {k['ms']:.1f} | {100 * k['share']:.0f}% | "
                     + (f"{k['flops'] / 1e9:.2f} | {rate:.0f} | " + (f"{100 * rate / mm:.0f}% |" if mm else "- |")
                        if rate else "- | - | - |"))
    flops = sum(o["flops"] for o in t.ops.values())
    ms = sum(o["ms"] for o in t.ops.values() if o["flops"])
    lines.append(f"| all matmuls and convolutions | {ms:.1f} | {100 * ms / t.total_ms:.0f}% | {flops / 1e9:.2f} | "
                 f"{flops / ms / 1e6:.0f} | " + (f"{100 * flops / ms / 1e6 / mm:.0f}% |" if mm else "- |"))
    lines.append(f"| the whole step (its ops) | {t.total_ms:.1f} | 100% | {flops / 1e9:.2f} | "
                 f"{flops / t.total_ms / 1e6:.0f} | " + (f"{100 * flops / t.total_ms / 1e6 / mm:.0f}% |" if mm else "- |"))
    zero = t.zero_ms()
    lines += ["", f"matmuls and convolutions of a gradient that is exactly zero: {zero:.1f} ms "
              f"({100 * zero / t.total_ms:.0f}%)", f"the {top} longest ops (ms a step, GFLOP/s where counted):"]
    for o in sorted(t.ops.values(), key=lambda o: -o["ms"])[:top]:
        rate = f"  {o['flops'] / o['ms'] / 1e6:.0f} GFLOP/s" if o["flops"] and o["ms"] else ""
        lines.append(f"  {o['ms']:7.2f}  {o['name']}  [{o['kernel']}]{rate}" + ("  (zero gradient)" if o["zero"] else ""))
    return "\n".join(lines)
