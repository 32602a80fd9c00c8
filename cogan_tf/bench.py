"""python -m cogan_tf.bench: how fast the training steps run on this machine, and how close to its limit.

One run measures:

* the machine's float32 matmul rate (GFLOP/s): a large square matmul in TensorFlow, median of several;
* for each model at its default batch size (cogan 128, vanilla 512, clustergan 100), on random uint8 data
  kept on the device (no dataset, no input pipeline): training steps/s and images/s after warm-up (tracing
  and compilation excluded, reported apart), the FLOPs of one training step counted analytically from the
  layer shapes (:func:`step_flops`), the same count read off TensorFlow's own per-op FLOP statistics of the
  step's graph (:func:`profiler_flops`, the cross-check), the achieved GFLOP/s and its ratio to the matmul
  rate, and the peak resident memory;
* the "straightforward" CoGAN step as the baseline (:func:`straightforward_cogan_step`: G1 and G2 each
  computed on their own, the shared trunk twice, in a tf.function without XLA, as the original graph
  did), and the ratio of the port's step to it.

It prints a table and writes the numbers as JSON (atomically). ``docs/PERFORMANCE.md`` holds the latest
table. Timings on a shared machine are noisy: the load average at start and end is recorded with them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import flags

from cogan_tf import fileio
from cogan_tf.config import MIXED_PRECISION  # --cogan_variants bfloat16/float16 -> the Keras dtype policy

DEFAULT_BATCH = {"cogan": 128, "vanilla": 512, "clustergan": 100}
ALL_MODELS = ("cogan", "vanilla", "clustergan")
COGAN_VARIANTS = ("straightforward", "recompute", "unfused_heads", "no_reuse", "deconv_heads", "unfused_bn", "xla",
                  "bfloat16", "float16", "loop", "bn_per_feature")
# Rows that time the port's own step on another CoGAN config: what a faithful quirk costs.
COGAN_CONFIG_VARIANTS = {"bn_per_feature": {"bn_per_feature": True}}

flags.DEFINE_list("models", list(ALL_MODELS), "Models to time; a model whose code is not there is skipped "
                  "(and listed as skipped) [cogan,vanilla,clustergan]")
flags.DEFINE_list("cogan_variants", ["straightforward"],
                  "Extra CoGAN rows beside the port's own step (port): straightforward (the original graph's "
                  "step, the baseline), recompute (the port's step before the speed levers), unfused_heads / "
                  "no_reuse / deconv_heads / unfused_bn (the port's step without one lever), bfloat16 / float16 "
                  "(the port's step under --mixed_precision), xla (the port's step under XLA), loop (the "
                  "port's step in the real training loop), bn_per_feature (the port's step with per-feature "
                  "BatchNorm statistics instead of the original's scalar ones, quirk Q2) [straightforward]")
flags.DEFINE_integer("steps", 20, "Timed steps per row (after warm-up); the step time is their median [20]")
flags.DEFINE_integer("warmup", 3, "Untimed steps first (the first traces and compiles) [3]")
flags.DEFINE_integer("batch_size", 0, "Batch size for every model; 0: each model's default [0]")
flags.DEFINE_string("out", "bench.json", "Where to write the JSON results [bench.json]")
flags.DEFINE_boolean("jit_compile", False, "Compile the models' own steps with XLA, as training's --jit_compile "
                     "(the straightforward baseline never is) [False]")
flags.DEFINE_integer("matmul_n", 2048, "Size of the square float32 matmul measuring the machine [2048]")
flags.DEFINE_integer("matmul_repeats", 10, "Timed matmuls (median) [10]")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads; 0: TensorFlow's default [0]")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads; 0: TensorFlow's default [0]")
flags.DEFINE_boolean("profile", True, "Cross-check the analytic FLOPs with TensorFlow's per-op statistics [True]")
flags.DEFINE_boolean("quick", False, "A seconds-long smoke run: batch 4, 1 warm-up and 2 timed steps, "
                     "a 256 matmul (numbers meaningless; for tests) [False]")
FLAGS = flags.FLAGS


# --- analytic FLOP count ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer with weights, by its multiply-accumulates per example (``macs``) and weight count.

    * dense ``n_in -> n_out``: ``n_in * n_out`` MACs;
    * conv (k x k, ``c_in -> c_out``) with an ``h_out x w_out`` output: ``h_out * w_out * k * k * c_in * c_out``;
    * transposed conv (deconv) with an ``h_in x w_in`` input: ``h_in * w_in * k * k * c_in * c_out`` (each
      input pixel scatters one k x k x c_out patch). Padding is ignored, as TensorFlow's own count does.
    Biases, BatchNorm, activations and the optimizer are elementwise and left out of the analytic count
    (the profiler's total includes them).

    ``tf_backprop_macs``: what TensorFlow's statistics count for this layer's two backprop ops
    (Conv2DBackpropInput/Filter of a conv): ``h_in * w_in / stride^2`` output positions instead of
    ``h_out * w_out``. The same for SAME padding with sizes divisible by the stride, more for VALID
    (ClusterGAN's 28 -> 13 -> 5 convs). ``tf_forward_macs``: what TensorFlow counts for the forward op
    when it is computed another way (the CoGAN heads as a sub-pixel convolution, which multiplies
    zeros too: 3 x 3 x 4 = 36 taps per input pixel for the 25 of the deconv). Used only to compare
    with TensorFlow's count; the table's count is the layer's own (``macs``).
    """

    name: str
    macs: int
    params: int
    tf_backprop_macs: Optional[float] = None
    tf_forward_macs: Optional[float] = None

    @property
    def tf_backprop(self) -> float:
        return self.macs if self.tf_backprop_macs is None else self.tf_backprop_macs

    @property
    def tf_forward(self) -> float:
        return self.macs if self.tf_forward_macs is None else self.tf_forward_macs


def dense(name: str, n_in: int, n_out: int) -> Layer:
    return Layer(name, n_in * n_out, n_in * n_out + n_out)


def conv(name: str, h_in: int, w_in: int, c_in: int, c_out: int, k: int, stride: int = 2,
         padding: str = "same") -> Layer:
    if padding == "same":
        h_out, w_out = -(-h_in // stride), -(-w_in // stride)
    else:
        h_out, w_out = (h_in - k) // stride + 1, (w_in - k) // stride + 1
    per_position = k * k * c_in * c_out
    return Layer(name, h_out * w_out * per_position, per_position + c_out,
                 tf_backprop_macs=h_in * w_in * per_position / (stride * stride))


def deconv(name: str, h_in: int, w_in: int, c_in: int, c_out: int, k: int) -> Layer:
    """Stride 2, SAME: the output is 2 h_in x 2 w_in."""
    return Layer(name, h_in * w_in * k * k * c_in * c_out, k * k * c_in * c_out + c_out)


class StepCount:
    """The matmul/conv work of one training step, built pass by pass as the step really runs.

    Formula: a forward pass through a layer costs ``2 * macs`` FLOPs per example (a multiply and an add
    per MAC). Its backward pass costs up to twice that: ``2 * macs`` for the gradient with respect to
    its input (needed unless nothing upstream is differentiated, e.g. the first layer of D in D's own
    update, or G's first layer, whose input is z) plus ``2 * macs`` for the gradient with respect to its
    weights (needed only when the update trains that layer: not D's layers in a G update). Everything is
    times the batch size. A layer run twice (say the shared trunk once per domain) counts twice.
    """

    def __init__(self):
        self.fwd: Dict[str, int] = {}
        self.dx: Dict[str, int] = {}
        self.dw: Dict[str, int] = {}
        self.layers: Dict[str, Layer] = {}

    def _add(self, table, layer: Layer, times: int):
        self.layers[layer.name] = layer
        table[layer.name] = table.get(layer.name, 0) + times

    def forward(self, layers: Sequence[Layer], times: int = 1) -> "StepCount":
        for layer in layers:
            self._add(self.fwd, layer, times)
        return self

    def backward(self, layers: Sequence[Layer], weights: bool, input_of_first: bool, times: int = 1) -> "StepCount":
        """Backprop through ``layers`` (in forward order): weight gradients if ``weights``; input
        gradients for every layer but the first, and for the first too if ``input_of_first``."""
        for i, layer in enumerate(layers):
            if weights:
                self._add(self.dw, layer, times)
            if i > 0 or input_of_first:
                self._add(self.dx, layer, times)
        return self

    def macs_per_example(self, tf_convention: bool = False) -> float:
        """MACs per example; ``tf_convention``: backprop ops as TensorFlow's statistics count them."""
        back = (lambda layer: layer.tf_backprop) if tf_convention else (lambda layer: layer.macs)
        fwd = (lambda layer: layer.tf_forward) if tf_convention else (lambda layer: layer.macs)
        return (sum(fwd(self.layers[n]) * c for n, c in self.fwd.items())
                + sum(back(self.layers[n]) * c for t in (self.dx, self.dw) for n, c in t.items()))

    def flops(self, batch: int, tf_convention: bool = False) -> float:
        return 2 * self.macs_per_example(tf_convention) * batch

    def passes(self) -> Dict[str, Dict[str, int]]:
        return {n: {"fwd": self.fwd.get(n, 0), "dx": self.dx.get(n, 0), "dw": self.dw.get(n, 0)} for n in self.layers}


def cogan_layers(m, subpixel_heads: bool = False) -> Dict[str, Layer]:
    """CoGAN's weight layers (REFERENCE.md §1) for a CoganConfig ``m``; ``subpixel_heads``: the heads'
    forward pass computed as a 3x3 convolution to 4x the channels (``cogan.subpixel_deconv``)."""
    s = m.output_size
    s2, s4 = s // 2, s // 4
    dh0 = m.d_h0_channels
    out = {
        "g_h0": dense("g_h0_lin", m.z_dim, 1024),
        "g_h1": dense("g_h1_lin", 1024 if m.h0_feeds_h1 else m.z_dim, s4 * s4 * 128),
        "g_h2": deconv("g_h2", s4, s4, 128, 128, 5),
        "g1_h3": deconv("g1_h3", s2, s2, 128, m.c_dim, 5),
        "g2_h3": deconv("g2_h3", s2, s2, 128, m.c_dim, 5),
        "d_h2": dense("d_h2_lin", s4 * s4 * 64, 1024),
        "d_h3": dense("d_h3_lin", 1024, 1),
    }
    if subpixel_heads:
        for k in ("g1_h3", "g2_h3"):
            out[k] = dataclasses.replace(out[k], tf_forward_macs=s2 * s2 * 3 * 3 * 128 * 4 * m.c_dim)
    for d in (1, 2):
        out[f"d{d}_h0"] = conv(f"d{d}_h0_conv", s, s, m.c_dim, dh0, 5)
        out[f"d{d}_h1"] = conv(f"d{d}_h1_conv", s2, s2, dh0, 64, 5)
    return out


def cogan_step_count(m, trunk_per_domain: bool = False, reuse_g_forward: bool = False,
                     subpixel_heads: bool = False) -> StepCount:
    """The CoGAN step: one D update, then ``g_updates_per_step`` G updates with the same z.

    ``trunk_per_domain``: G1 and G2 each run the shared trunk (the straightforward baseline); else the
    trunk runs once for both. ``reuse_g_forward``: the first G update reuses the D update's G forward
    pass (G's weights have not changed in between), so G runs forward once less per step.
    ``subpixel_heads``: the heads' forward pass as a sub-pixel convolution (counted apart for the
    comparison with TensorFlow only: the useful work is the same).
    """
    L = cogan_layers(m, subpixel_heads)
    trunk = ([L["g_h0"]] if m.h0_feeds_h1 else []) + [L["g_h1"], L["g_h2"]]
    heads = {1: L["g1_h3"], 2: L["g2_h3"]}
    d_path = {d: [L[f"d{d}_h0"], L[f"d{d}_h1"], L["d_h2"], L["d_h3"]] for d in (1, 2)}
    c = StepCount()

    def g_forward():
        if trunk_per_domain:
            for d in (1, 2):
                c.forward(trunk + [heads[d]])
        else:
            c.forward(trunk + [heads[1], heads[2]])

    def g_backward():
        if trunk_per_domain:
            for d in (1, 2):
                c.backward(trunk + [heads[d]], weights=True, input_of_first=False)
        else:
            c.backward([heads[1], heads[2]], weights=True, input_of_first=True)
            c.backward(trunk, weights=True, input_of_first=False)

    # D update: G forward (no G gradient), D on real and fake of each domain, D's weight gradients.
    g_forward()
    for d in (1, 2):
        c.forward(d_path[d], times=2)
        c.backward(d_path[d], weights=True, input_of_first=False, times=2)
    # G updates: G forward, D forward on the fakes, gradients through D (not of D) into G's weights.
    for i in range(m.g_updates_per_step):
        if not (reuse_g_forward and i == 0):
            g_forward()
        for d in (1, 2):
            c.forward(d_path[d])
            c.backward(d_path[d], weights=False, input_of_first=True)
        g_backward()
    return c


def param_count(layers: Sequence[Layer]) -> int:
    return sum(layer.params for layer in layers)


def vanilla_layers(m) -> Dict[str, List[Layer]]:
    """The vanilla GAN's MLPs (REFERENCE.md §2) for a VanillaConfig ``m``."""
    h = m.hidden
    return {"g": [dense("g_h0", m.z_dim, h), dense("g_h1", h, h), dense("g_h2", h, h), dense("g_h3", h, 784)],
            "d": [dense("d_h0", 784, h), dense("d_h1", h, h), dense("d_h2", h, h), dense("d_h3", h, 1)]}


def vanilla_step_count(m) -> StepCount:
    """One D update (G forward without gradient for the fake batch; D on real and on fake), then one
    G update on a fresh z (G forward, D forward, gradients through D into G)."""
    L = vanilla_layers(m)
    g, d = L["g"], L["d"]
    c = StepCount()
    c.forward(g)
    c.forward(d, times=2)
    c.backward(d, weights=True, input_of_first=False, times=2)
    c.forward(g).forward(d)
    c.backward(d, weights=False, input_of_first=True)
    c.backward(g, weights=True, input_of_first=False)
    return c


def clustergan_layers(m) -> Dict[str, List[Layer]]:
    """ClusterGAN's G, D and E (REFERENCE.md §3) for a ClusterGanConfig ``m``; D and E share the shape
    of their conv trunk (not its weights)."""
    def trunk(p):
        return [conv(f"{p}_c0", 28, 28, 1, 64, 4, padding="valid"), conv(f"{p}_c1", 13, 13, 64, 128, 4, padding="valid"),
                dense(f"{p}_h2", 5 * 5 * 128, 1024)]

    zc = m.z_dim + m.n_classes
    return {"g": [dense("g_h0", zc, 1024), dense("g_h1", 1024, 7 * 7 * 128), deconv("g_h2", 7, 7, 128, 64, 4),
                  deconv("g_h3", 14, 14, 64, 1, 4)],
            "d": trunk("d") + [dense("d_h3", 1024, 1)],
            "e": trunk("e") + [dense("e_h3", 1024, zc)]}


def clustergan_step_counts(m) -> Dict[str, StepCount]:
    """``d``: what every step does (G forward without gradient, D on real and fake, D's gradients);
    ``ge``: what the G+E update adds on every ``g_every``-th step (G forward, E and D on the fake,
    E's weight gradients, gradients through E and D into G)."""
    L = clustergan_layers(m)
    g, d, e = L["g"], L["d"], L["e"]
    dc = StepCount().forward(g).forward(d, times=2).backward(d, weights=True, input_of_first=False, times=2)
    ge = StepCount().forward(g).forward(e).forward(d)
    ge.backward(e, weights=True, input_of_first=True)
    ge.backward(d, weights=False, input_of_first=True)
    ge.backward(g, weights=True, input_of_first=False)
    return {"d": dc, "ge": ge}


# --- TensorFlow's count -----------------------------------------------------------------------------

MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput",
              "Conv2DBackpropFilter")
_NOT_SINKS = ("ReadVariableOp", "VarHandleOp", "VarIsInitializedOp", "Placeholder", "Const")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_COND_OPS = ("If", "StatelessIf")


def _graph_flops(graph, prefix: str = "") -> Dict[str, object]:
    """Per-op FLOPs of ``graph`` over its live ops; function calls added in, each branch of a
    conditional reported apart (only one of them runs)."""
    from tensorflow.python.framework import ops as ops_lib

    all_ops = graph.get_operations()
    sinks = [t.op for t in graph.outputs] + [op for op in all_ops if op._is_stateful and op.type not in _NOT_SINKS]
    live, stack = set(), list(sinks)
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    out = {"graph_total": 0, "total": 0, "matmul_conv": 0, "by_type": {}, "branches": {}, "uncounted": []}

    def sub(name):
        f = getattr(graph, "_functions", {}).get(name)
        return getattr(f, "graph", None)

    for op in all_ops:
        try:
            v = int(ops_lib.get_stats_for_node_def(graph, op.node_def, "flops").value or 0)
        except ValueError:  # no statistics registered for this op, or a shape unknown
            v = 0
        out["graph_total"] += v
        if op.name not in live:
            continue
        out["total"] += v
        if op.type in MATMUL_OPS:
            out["matmul_conv"] += v
            out["by_type"][op.type] = out["by_type"].get(op.type, 0) + v
        if op.type in _CALL_OPS or op.type in _COND_OPS:
            attrs = ("f",) if op.type in _CALL_OPS else ("then_branch", "else_branch")
            for attr in attrs:
                fg = sub(op.get_attr(attr).name)
                if fg is None:
                    out["uncounted"].append(f"{prefix}{op.name}/{attr}")
                    continue
                inner = _graph_flops(fg, f"{prefix}{op.name}/{attr}/")
                out["uncounted"] += inner["uncounted"]
                if op.type in _CALL_OPS:
                    for k in ("graph_total", "total", "matmul_conv"):
                        out[k] += inner[k]
                    out["branches"].update(inner["branches"])
                else:
                    out["branches"][f"{prefix}{op.name}/{attr}"] = {k: inner[k] for k in ("total", "matmul_conv")}
                    out["branches"].update(inner["branches"])
    return out


def profiler_flops(concrete_fn) -> Dict[str, object]:
    """FLOPs of a concrete function's graph by TensorFlow's own per-op statistics (the ones
    ``tf.compat.v1.profiler``'s ``float_operation()`` view sums), over the ops that actually run.

    The traced graph also holds ops whose results nothing uses (e.g. gradients of D's weights in a
    G update: the tape's MatMul gradient emits both halves), which Grappler prunes before running.
    So besides the total over the whole graph (``graph_total``), the ops are restricted to those the
    outputs and the stateful ops (variable updates) depend on (``total``; ``matmul_conv`` the
    matmuls and convolutions among them, what the analytic count counts). A conditional's branches
    (ClusterGAN's G+E update) are counted apart under ``branches``; anything that could not be read
    is listed under ``uncounted``.
    """
    import tensorflow as tf

    graph = concrete_fn.graph
    out = _graph_flops(graph)
    out["note"] = ""
    # The profiler proper, as a check that the per-op sum above is what it reports for the whole graph.
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    try:
        prof = tf.compat.v1.profiler.profile(graph=graph, options=opts)
        out["profiler_graph_total"] = int(prof.total_float_ops)
    except Exception as e:  # noqa: BLE001 - the cross-check is optional; say why it is missing
        out["profiler_graph_total"] = None
        out["note"] = f"tf.compat.v1.profiler failed: {type(e).__name__}: {e}"
    return out


# --- measurements -----------------------------------------------------------------------------------

def _sync(out):
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)


def time_calls(fn: Callable, args, warmup: int, steps: int, cycle: int = 1) -> Dict[str, object]:
    """Call ``fn(*args)`` ``warmup`` times (the first traces and compiles: timed apart), then time
    ``steps`` blocks of ``cycle`` calls, each block waited for. Per-call time = block time / cycle."""
    t0 = time.perf_counter()
    _sync(fn(*args))
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0) * cycle):
        _sync(fn(*args))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        for _ in range(cycle):
            out = fn(*args)
        _sync(out)
        times.append((time.perf_counter() - t0) / cycle)
    return {"first_call_s": first, "times_s": times, "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times), "min_s": min(times)}


def matmul_fn(n: int):
    """A compiled float32 ``n x n`` matmul (``2 n^3`` FLOPs); the sum waits for it and fetches little."""
    import tensorflow as tf

    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    return tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))


def _matmul_record(n: int, times: Sequence[float]) -> Dict[str, object]:
    flops = 2 * n ** 3
    med = statistics.median(times)
    return {"n": n, "flops": flops, "median_s": med, "gflops": flops / med / 1e9,
            "best_gflops": flops / min(times) / 1e9, "repeats": len(times)}


def _rss_mb(field: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: reset the peak resident set size (VmHWM) to the current one, so each row gets its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    hwm = _rss_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def tf_memory_info(reset: bool = False) -> Optional[Dict[str, int]]:
    """TensorFlow's own allocator statistics in bytes (current, peak), None where the device does not
    keep them; ``reset`` restarts the peak."""
    import tensorflow as tf

    try:
        if reset:
            tf.config.experimental.reset_memory_stats("CPU:0")
            return None
        return dict(tf.config.experimental.get_memory_info("CPU:0"))
    except (ValueError, RuntimeError):
        return None


def machine() -> Dict[str, object]:
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


# --- the steps --------------------------------------------------------------------------------------

def reference_cogan_step(gan, trunk_per_domain: bool = False, reuse_g_forward: bool = False,
                         fused_heads: bool = False) -> Callable:
    """The CoGAN step (1 D update, then ``g_updates_per_step`` G updates with the same z) with each speed
    lever of the port's step on or off, for the benchmark's reference rows:

    * ``trunk_per_domain``: G1 and G2 each computed on their own (``generate_one``: the shared trunk
      runs once per domain, forward and backward), as the original graph does; else once for both;
    * ``reuse_g_forward``: the first G update reuses the D update's G forward pass (the port's step);
    * ``fused_heads``: both output heads as one two-channel deconv, computed as a sub-pixel convolution
      (``cogan.generate_pair``).

    All settings give the same trainable weights to rounding (tests/test_speed.py). The G BatchNorm
    moving averages: updated once per domain with ``trunk_per_domain``; with ``reuse_g_forward`` the
    skipped forward's update is replayed, as in the port's step.
    """
    import tensorflow as tf
    from cogan_tf import cogan
    from cogan_tf.gan import apply_gradients

    g, m = gan.generator, gan.model_cfg

    def fakes(z):
        if trunk_per_domain:
            return g.generate_one(z, 1, training=True), g.generate_one(z, 2, training=True)
        if fused_heads:
            return cogan.generate_pair(g, z, training=True)
        return g(z, training=True)

    def step(x1, x2):
        x1 = tf.cast(x1, tf.float32) / 255.0
        x2 = tf.cast(x2, tf.float32) / 255.0
        z = gan.rng.normal([tf.shape(x1)[0], m.z_dim])
        if reuse_g_forward:
            return gan.updates(x1, x2, z, fakes)  # the port's own updates, with these fakes
        with tf.GradientTape() as tape:
            fake1, fake2 = fakes(z)
            d_out = gan.d_losses(x1, x2, fake1, fake2, training=True)
        apply_gradients(gan.d_opt, tape, d_out["d_loss"], gan.d_vars)
        for _ in range(m.g_updates_per_step):
            with tf.GradientTape() as tape:
                fake1, fake2 = fakes(z)
                g_out = gan.g_losses(fake1, fake2, training=True)
            apply_gradients(gan.g_opt, tape, g_out["g_loss"], gan.g_vars)
        return {**d_out, **g_out}

    return step


def straightforward_cogan_step(gan) -> Callable:
    """The baseline: the CoGAN step as the original graph computes it: G1 and G2 each on their own
    (the shared trunk twice, forward and backward), D1 and D2 separately on real and fake, G run
    again for every update, BatchNorm and PReLU unfused (:func:`use_plain_layers`); in a tf.function,
    without XLA."""
    return reference_cogan_step(use_plain_layers(gan), trunk_per_domain=True)


def recompute_cogan_step(gan) -> Callable:
    """The port's step before the speed levers (as first committed): the trunk once for both
    domains, but G run forward for every update, the heads as two deconvs, the layers unfused."""
    return reference_cogan_step(use_plain_layers(gan))


def use_plain_layers(gan):
    """The layers as first written, and as the original graph computes them: BatchNorm as separate
    moments and normalisation ops differentiated by autodiff (Keras's BatchNormalization; the original's
    TF 0.12 batch norm was not fused either) instead of the fused op, and the PReLUs' gradient by
    autodiff of ``maximum`` instead of the written one."""
    from cogan_tf.layers import BatchNorm, ScalarPReLU

    for model in (gan.generator, gan.discriminator):
        for layer in model._flatten_layers():
            if isinstance(layer, BatchNorm):
                layer.fused = False
            if isinstance(layer, ScalarPReLU):
                layer.written_gradient = False
    return gan


def deconv_heads_cogan_step(gan) -> Callable:
    """The port's step with the two-channel head computed as a transposed convolution, not as the
    sub-pixel convolution (``cogan.subpixel_deconv``)."""
    gan.subpixel_heads = False
    return gan.train_step


def unfused_bn_cogan_step(gan) -> Callable:
    """The port's step with the layers as first written (:func:`use_plain_layers`)."""
    return use_plain_layers(gan).train_step


COGAN_STEPS = {
    "straightforward": straightforward_cogan_step,
    "recompute": recompute_cogan_step,
    "unfused_heads": lambda gan: reference_cogan_step(gan, reuse_g_forward=True),
    "no_reuse": lambda gan: reference_cogan_step(gan, fused_heads=True),
    "unfused_bn": unfused_bn_cogan_step,
    "deconv_heads": deconv_heads_cogan_step,
}


@dataclasses.dataclass
class Row:
    """One timed step. ``parts``: name -> (its analytic count, how many times per step it runs on
    average); ``cycle``: calls per timed block (ClusterGAN's G+E update comes every g_every-th step)."""

    model: str
    variant: str
    batch: int
    jit_compile: bool
    parts: Dict[str, tuple]
    cycle: int = 1
    mixed_precision: Optional[str] = None  # a TrainConfig.mixed_precision value; None: float32
    model_overrides: Optional[dict] = None  # CoganConfig fields that differ from the default (faithful) ones

    @property
    def flops_analytic(self) -> float:
        return sum(count.flops(self.batch) * per_step for count, per_step in self.parts.values())


def make_model(name: str, batch: int, jit_compile: bool, seed: int = 0, mixed_precision: Optional[str] = None,
               model_overrides: Optional[dict] = None):
    """A built GAN of ``name`` at ``batch`` (and precision, and model config fields ``model_overrides``)
    and one batch of random uint8 inputs for its step."""
    import numpy as np
    import keras
    import tensorflow as tf
    from cogan_tf import config as C, gan as gan_lib, runner

    ckpt = os.path.join(tempfile.gettempdir(), "cogan_bench_no_checkpoints")  # never written: nothing is saved
    cfg = C.TrainConfig(model=name, batch_size=batch, seed=seed, jit_compile=jit_compile, checkpoint_dir=ckpt,
                        log_every=0, sample_every=0, save_every=0, mixed_precision=mixed_precision)
    rng = np.random.default_rng(seed)
    n_arrays = 2 if name == "cogan" else 1
    arrays = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(n_arrays)]
    gan = runner.make_gan(C.MODEL_CONFIGS[name](**(model_overrides or {})), cfg, arrays=arrays)
    keras.utils.set_random_seed(seed)
    gan_lib.build_gan(gan)  # under its strategy's scope (one device here) and its precision's dtype policy
    inputs = tuple(tf.constant(a) for a in arrays)  # uint8, on the device, scaled inside the step
    return gan, inputs


def model_rows(name: str, batch: int, jit_compile: bool, cogan_variants: Sequence[str]) -> List[Row]:
    """The rows of one model: its own step (``port``), and for the CoGAN the reference steps asked for."""
    from cogan_tf import config as C

    m = C.MODEL_CONFIGS[name]()
    port = "port+xla" if jit_compile else "port"
    if name == "vanilla":
        import cogan_tf.vanilla  # noqa: F401 - skipped, with the reason, if the model is not there

        return [Row(name, port, batch, jit_compile, {"step": (vanilla_step_count(m), 1)})]
    if name == "clustergan":
        import cogan_tf.clustergan  # noqa: F401

        c = clustergan_step_counts(m)
        return [Row(name, port, batch, jit_compile, {"d": (c["d"], 1), "ge": (c["ge"], 1.0 / m.g_every)},
                    cycle=m.g_every)]
    rows = [Row(name, port, batch, jit_compile,
                {"step": (cogan_step_count(m, reuse_g_forward=True, subpixel_heads=True), 1)})]
    if "xla" in cogan_variants and not jit_compile:
        rows.append(Row(name, "port+xla", batch, True, rows[0].parts))
    for variant in ("bfloat16", "float16"):
        if variant in cogan_variants:
            rows.append(Row(name, variant, batch, jit_compile, rows[0].parts, mixed_precision=MIXED_PRECISION[variant]))
    for variant in ("recompute", "no_reuse", "unfused_heads", "deconv_heads", "unfused_bn"):
        if variant in cogan_variants:
            count = cogan_step_count(m, reuse_g_forward=variant in ("unfused_heads", "deconv_heads", "unfused_bn"),
                                     subpixel_heads=variant in ("no_reuse", "unfused_bn"))
            rows.append(Row(name, variant, batch, False, {"step": (count, 1)}))
    for variant, overrides in COGAN_CONFIG_VARIANTS.items():
        if variant in cogan_variants:
            rows.append(Row(name, variant, batch, jit_compile, rows[0].parts, model_overrides=overrides))
    if "loop" in cogan_variants:
        rows.append(Row(name, "loop", batch, jit_compile, rows[0].parts))
    if "straightforward" in cogan_variants:
        rows.append(Row(name, "straightforward", batch, False,
                        {"step": (cogan_step_count(m, trunk_per_domain=True), 1)}))
    return rows


def time_loop(name: str, batch: int, jit_compile: bool, warmup: int, steps: int, seed: int = 0) -> Dict[str, object]:
    """The port's step inside the real training loop (``train.fit``: tf.data with prefetch, the
    per-step loss read-back, log line and TensorBoard scalars; no grids, no checkpoints until the end):
    the time between consecutive log lines after ``warmup`` steps."""
    import numpy as np
    from cogan_tf import config as C, runner

    root = tempfile.mkdtemp(prefix="cogan_bench_loop_")
    n = batch * (warmup + steps)
    cfg = C.TrainConfig(model=name, batch_size=batch, seed=seed, jit_compile=jit_compile, epoch=1,
                        max_steps=warmup + steps, log_every=1, sample_every=0, save_every=0,
                        **{k: os.path.join(root, k) for k in ("checkpoint_dir", "sample_dir", "log_dir",
                                                             "export_dir", "evaluate_dir")})
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8) for _ in range(2 if name == "cogan" else 1)]
    stamps = []
    t0 = time.perf_counter()
    try:
        runner.run(C.MODEL_CONFIGS[name](), cfg, arrays=arrays,
                   log=lambda line: stamps.append(time.perf_counter()) if line.startswith("Epoch:") else None)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # its checkpoint, logs and SavedModel
    times = [b - a for a, b in zip(stamps[warmup - 1:], stamps[warmup:])] if warmup >= 1 else []
    return {"first_call_s": stamps[0] - t0, "times_s": times, "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times), "min_s": min(times)}


def flops_check(row: Row, prof: dict) -> dict:
    """Analytic matmul/conv FLOPs of each part against TensorFlow's count: ``step`` / ``d`` is the
    step's graph, ``ge`` the true branch of its conditional (ClusterGAN's G+E update). The analytic
    side counts backprop ops by TensorFlow's convention here (:class:`Layer`), so that the two agree
    to the FLOP when the passes are counted right; the table's GFLOP/step is the true count."""
    analytic = {k: count.flops(row.batch, tf_convention=True) for k, (count, _) in row.parts.items()}
    tf_count = {}
    for k in analytic:
        if k == "ge":
            then = [v["matmul_conv"] for b, v in prof.get("branches", {}).items() if b.endswith("then_branch")]
            tf_count[k] = then[0] if len(then) == 1 else None
        else:
            tf_count[k] = prof.get("matmul_conv")
    match = all(tf_count[k] is not None and abs(tf_count[k] - v) <= max(8, 1e-9 * v) for k, v in analytic.items())
    return {"analytic_tf_convention": analytic, "tensorflow": tf_count, "match": match}


def build_row(row: Row) -> dict:
    """Build the row's model (weights, optimizer slots) and its inputs; TensorFlow's allocator growth
    meanwhile is the row's resident share. All rows are built before any is warmed up: building a
    model (``keras.utils.set_random_seed``, i.e. ``tf.random.set_seed``) clears TensorFlow's kernel
    cache, which would cost every step compiled before it ~1 s on its next call."""
    mem0 = tf_memory_info()
    gan, inputs = make_model(row.model, row.batch, row.jit_compile, mixed_precision=row.mixed_precision,
                             model_overrides=row.model_overrides)
    mem1 = tf_memory_info()
    built = (mem1["current"] - mem0["current"]) / 2 ** 20 if mem0 and mem1 else None
    return {"model": row.model, "variant": row.variant, "batch": row.batch, "jit_compile": row.jit_compile,
            "cycle": row.cycle, "flops_analytic": row.flops_analytic, "tf_built_mb": built,
            "analytic_passes": {k: {"per_step": per, "passes": count.passes()} for k, (count, per) in row.parts.items()},
            "_gan": gan, "_inputs": inputs}


def prepare_row(row: Row, rec: dict, warmup: int, profile: bool) -> dict:
    """Compile the row's step and run the warm-up (the first call, tracing and compiling, timed
    apart), count its FLOPs both ways, and record its memory: the process's peak resident memory
    during the warm-up (the high-water mark is reset first) and TensorFlow's allocator peak for the
    row alone (what its build kept plus the warm-up's peak above what was allocated before it)."""
    import tensorflow as tf

    gan, inputs = rec.pop("_gan"), rec.pop("_inputs")
    reset_peak_rss()
    tf_memory_info(reset=True)
    rss0 = _rss_mb("VmRSS")
    mem0 = tf_memory_info()
    py_step = COGAN_STEPS[row.variant](gan) if row.variant in COGAN_STEPS else gan.train_step
    fn = tf.function(py_step, jit_compile=row.jit_compile)
    t0 = time.perf_counter()
    _sync(fn(*inputs))
    rec["first_call_s"] = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0) * row.cycle):
        _sync(fn(*inputs))
    rec["warmup"] = warmup * row.cycle
    if profile:
        try:
            rec["profiler"] = profiler_flops(fn.get_concrete_function(*inputs))
            rec["flops_check"] = flops_check(row, rec["profiler"])
        except Exception as e:  # noqa: BLE001 - report why the cross-check could not run
            rec["profiler"] = {"note": f"could not count: {type(e).__name__}: {e}"}
            rec["flops_check"] = {"match": None, "note": rec["profiler"]["note"]}
    rec["peak_rss_mb"] = peak_rss_mb()
    rec["rss_before_mb"] = rss0
    rec["tf_memory"] = tf_memory_info()
    peak = _tf_row_peak_mb(mem0, rec["tf_memory"])
    rec["tf_peak_mb"] = None if peak is None or rec["tf_built_mb"] is None else peak + rec["tf_built_mb"]
    rec["_call"] = lambda: fn(*inputs)
    return rec


def _tf_row_peak_mb(before: Optional[dict], after: Optional[dict]) -> Optional[float]:
    """TensorFlow's allocator peak during a row above what was allocated before it (earlier rows'
    models stay alive for the round-robin): the row's weights, optimizer slots and activations."""
    if not before or not after:
        return None
    return (after["peak"] - before["current"]) / 2 ** 20


def finish_row(rec: dict, times: Sequence[float]) -> dict:
    med = statistics.median(times)
    rec.update(step_ms=med * 1e3, step_ms_mean=statistics.fmean(times) * 1e3, step_ms_min=min(times) * 1e3,
               steps_per_s=1.0 / med, images_per_s=rec["batch"] / med, timed_steps=len(times) * rec["cycle"],
               gflops_per_s=rec["flops_analytic"] / med / 1e9)
    rec.pop("_call", None)
    return rec


def time_round_robin(recs: Sequence[dict], steps: int, matmul=None) -> List[List[float]]:
    """``steps`` rounds; in each, every row runs one block of ``cycle`` steps (waited for), then the
    matmul once. Interleaving gives every row the same share of whatever else the machine is doing,
    so their ratios hold up on a noisy machine better than rows timed one after another."""
    times: List[List[float]] = [[] for _ in recs]
    mm: List[float] = []
    for rec in recs:  # one untimed round: nothing in the first round pays for what ran before it
        _sync(rec["_call"]())
    for _ in range(steps):
        for i, rec in enumerate(recs):
            t0 = time.perf_counter()
            for _ in range(rec["cycle"]):
                out = rec["_call"]()
            _sync(out)
            times[i].append((time.perf_counter() - t0) / rec["cycle"])
        if matmul is not None:
            t0 = time.perf_counter()
            _sync(matmul())
            mm.append(time.perf_counter() - t0)
    return times + [mm]


def run_loop_row(row: Row, warmup: int, steps: int) -> dict:
    reset_peak_rss()
    tf_memory_info(reset=True)
    rss0 = _rss_mb("VmRSS")
    mem0 = tf_memory_info()
    t = time_loop(row.model, row.batch, row.jit_compile, max(warmup, 1), steps)
    mem = tf_memory_info()
    rec = {"model": row.model, "variant": row.variant, "batch": row.batch, "jit_compile": row.jit_compile,
           "cycle": 1, "flops_analytic": row.flops_analytic, "first_call_s": t["first_call_s"], "warmup": warmup,
           "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss0, "tf_memory": mem, "tf_peak_mb": _tf_row_peak_mb(mem0, mem),
           "note": "timed on its own, after the others"}
    return finish_row(rec, t["times_s"])


# --- report -----------------------------------------------------------------------------------------

def format_table(result: dict) -> str:
    mm = result["matmul"]
    lines = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, TF "
             f"{result['machine']['tensorflow']}; load average {result['loadavg_start']} -> {result['loadavg_end']}",
             f"float32 matmul {mm['n']}x{mm['n']}: {mm['gflops']:.1f} GFLOP/s (median of {mm['repeats']}, "
             f"interleaved with the rows' steps)",
             ""]
    head = (f"{'model':<11}{'variant':<17}{'batch':>6}{'step ms':>9}{'steps/s':>9}{'img/s':>9}"
            f"{'GFLOP/step':>11}{'TF count':>9}{'GFLOP/s':>9}{'%matmul':>8}{'RSS MB':>8}{'TF MB':>7}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        match = r.get("flops_check", {}).get("match")
        check = {True: "same", False: "DIFF", None: "n/a"}[match]
        lines.append(f"{r['model']:<11}{r['variant']:<17}{r['batch']:>6}{r['step_ms']:>9.1f}{r['steps_per_s']:>9.2f}"
                     f"{r['images_per_s']:>9.0f}{r['flops_analytic'] / 1e9:>11.2f}{check:>9}{r['gflops_per_s']:>9.1f}"
                     f"{100 * r['fraction_of_matmul']:>7.0f}%{r['peak_rss_mb']:>8.0f}"
                     f"{(r.get('tf_peak_mb') or float('nan')):>7.0f}")
    lines.append("")
    lines.append("GFLOP/step: analytic matmul/conv FLOPs of one step (ClusterGAN: averaged over its 1:5 cycle); "
                 "TF count: TensorFlow's own count of the same ops on the step's graph agrees (same) or not (DIFF)")
    lines.append("step ms: median over the timed steps (rows timed round-robin; loop: on its own); RSS MB: the "
                 "process's peak resident memory during the row's warm-up (all models built by then); TF MB: "
                 "TensorFlow's allocator peak for the row alone (weights, optimizer slots, activations)")
    for k, v in result["ratios"].items():
        lines.append(f"{k}: {v:.2f}x")
    for m, why in result["skipped"].items():
        lines.append(f"skipped {m}: {why}")
    return "\n".join(lines)


def run(models: Sequence[str], cogan_variants: Sequence[str], steps: int, warmup: int, batch_size: int,
        jit_compile: bool, matmul_n: int, matmul_repeats: int, profile: bool = True, log=print) -> dict:
    import tensorflow as tf  # noqa: F401

    result = {"command": " ".join([os.path.basename(sys.executable), "-m", "cogan_tf.bench"] + sys.argv[1:]),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
              "loadavg_start": [round(x, 2) for x in os.getloadavg()], "matmul_repeats": matmul_repeats,
              "rows": [], "ratios": {}, "skipped": {}}
    mm_fn = matmul_fn(matmul_n)
    t = time_calls(mm_fn, (), warmup=2, steps=matmul_repeats)
    mm_times = list(t["times_s"])
    log(f"float32 matmul {matmul_n}x{matmul_n}: {_matmul_record(matmul_n, mm_times)['gflops']:.1f} GFLOP/s")
    rows: List[Row] = []
    for name in models:
        if name not in DEFAULT_BATCH:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(ALL_MODELS)}")
        try:
            rows += model_rows(name, batch_size or DEFAULT_BATCH[name], jit_compile, cogan_variants)
        except (ImportError, NotImplementedError) as e:
            result["skipped"][name] = f"{type(e).__name__}: {e}"
            log(f"skipped {name}: {result['skipped'][name]}")
    steps_rows = [r for r in rows if r.variant != "loop"]
    recs = [build_row(row) for row in steps_rows]
    for row, rec in zip(steps_rows, recs):
        prepare_row(row, rec, warmup, profile)
        log(f"{row.model} {row.variant}: first call {rec['first_call_s']:.1f} s")
    log(f"timing {len(recs)} rows round-robin, {steps} rounds")
    times = time_round_robin(recs, steps, matmul=mm_fn)
    mm_times += times[-1]
    result["matmul"] = _matmul_record(matmul_n, mm_times)
    done = {id(row): finish_row(rec, ts) for row, rec, ts in zip(steps_rows, recs, times)}
    for row in rows:
        if row.variant == "loop":
            done[id(row)] = run_loop_row(row, warmup, steps)
        rec = done[id(row)]
        rec["fraction_of_matmul"] = rec["gflops_per_s"] / result["matmul"]["gflops"]
        result["rows"].append(rec)
        log(f"{rec['model']} {rec['variant']}: {rec['step_ms']:.1f} ms/step, {rec['gflops_per_s']:.1f} GFLOP/s")
    by = {(r["model"], r["variant"]): r for r in result["rows"]}
    base = by.get(("cogan", "straightforward"))
    if base is not None:
        for (model, variant), r in by.items():
            if model == "cogan" and variant != "straightforward":
                result["ratios"][f"cogan {variant} / straightforward (steps/s)"] = r["steps_per_s"] / base["steps_per_s"]
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def validate(f) -> None:
    """One-line refusals, before TensorFlow starts (a negative thread count aborts it in C++)."""
    from cogan_tf.cli import UsageError

    def bad(flag, why):
        raise UsageError(f"--{flag}={getattr(f, flag)}: {why}")

    for flag, low in (("steps", 1), ("warmup", 0), ("batch_size", 0), ("matmul_n", 1), ("matmul_repeats", 1),
                      ("intra_op_threads", 0), ("inter_op_threads", 0)):
        if getattr(f, flag) < low:
            bad(flag, f"must be {low} or more")
    unknown = [m for m in f.models if m not in ALL_MODELS]
    if unknown or not f.models:
        raise UsageError(f"--models={','.join(f.models)}: choose from {', '.join(ALL_MODELS)}")
    unknown = [v for v in f.cogan_variants if v not in COGAN_VARIANTS]
    if unknown:
        raise UsageError(f"--cogan_variants={','.join(f.cogan_variants)}: {', '.join(unknown)} unknown; choose from "
                         f"{', '.join(COGAN_VARIANTS)}")


def main(argv):
    del argv
    validate(FLAGS)
    import tensorflow as tf

    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    quick = FLAGS.quick
    result = run(FLAGS.models, FLAGS.cogan_variants,
                 steps=2 if quick else FLAGS.steps, warmup=2 if quick else FLAGS.warmup,
                 batch_size=4 if quick else FLAGS.batch_size, jit_compile=FLAGS.jit_compile,
                 matmul_n=256 if quick else FLAGS.matmul_n, matmul_repeats=2 if quick else FLAGS.matmul_repeats,
                 profile=FLAGS.profile)
    result["quick"] = quick
    print()
    print(format_table(result))
    fileio.atomic_write_text(FLAGS.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {FLAGS.out}")
    return 0


if __name__ == "__main__":
    from cogan_tf import cli

    cli.run(main)
