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

import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import flags

from cogan_tf import fileio

DEFAULT_BATCH = {"cogan": 128, "vanilla": 512, "clustergan": 100}
ALL_MODELS = ("cogan", "vanilla", "clustergan")
COGAN_VARIANTS = ("straightforward", "recompute", "xla")

flags.DEFINE_list("models", list(ALL_MODELS), "Models to time; a model whose code is not there is skipped "
                  "(and listed as skipped) [cogan,vanilla,clustergan]")
flags.DEFINE_list("cogan_variants", ["straightforward"],
                  f"Extra CoGAN rows beside the port's own step: {', '.join(COGAN_VARIANTS)} [straightforward]")
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
    """

    name: str
    macs: int
    params: int


def dense(name: str, n_in: int, n_out: int) -> Layer:
    return Layer(name, n_in * n_out, n_in * n_out + n_out)


def conv(name: str, h_out: int, w_out: int, c_in: int, c_out: int, k: int) -> Layer:
    return Layer(name, h_out * w_out * k * k * c_in * c_out, k * k * c_in * c_out + c_out)


def deconv(name: str, h_in: int, w_in: int, c_in: int, c_out: int, k: int) -> Layer:
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

    def macs_per_example(self) -> int:
        return sum(self.layers[n].macs * c for t in (self.fwd, self.dx, self.dw) for n, c in t.items())

    def flops(self, batch: int) -> int:
        return 2 * self.macs_per_example() * batch

    def passes(self) -> Dict[str, Dict[str, int]]:
        return {n: {"fwd": self.fwd.get(n, 0), "dx": self.dx.get(n, 0), "dw": self.dw.get(n, 0)} for n in self.layers}


def cogan_layers(m) -> Dict[str, Layer]:
    """CoGAN's weight layers (REFERENCE.md §1) for a CoganConfig ``m``."""
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
    for d in (1, 2):
        out[f"d{d}_h0"] = conv(f"d{d}_h0_conv", s2, s2, m.c_dim, dh0, 5)
        out[f"d{d}_h1"] = conv(f"d{d}_h1_conv", s4, s4, dh0, 64, 5)
    return out


def cogan_step_count(m, trunk_per_domain: bool = False, reuse_g_forward: bool = False) -> StepCount:
    """The CoGAN step: one D update, then ``g_updates_per_step`` G updates with the same z.

    ``trunk_per_domain``: G1 and G2 each run the shared trunk (the straightforward baseline); else the
    trunk runs once for both. ``reuse_g_forward``: the first G update reuses the D update's G forward
    pass (G's weights have not changed in between), so G runs forward once less per step.
    """
    L = cogan_layers(m)
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


# --- TensorFlow's count -----------------------------------------------------------------------------

MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput",
              "Conv2DBackpropFilter")
_NOT_SINKS = ("ReadVariableOp", "VarHandleOp", "VarIsInitializedOp", "Placeholder", "Const")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If", "StatelessIf", "Case")


def profiler_flops(concrete_fn) -> Dict[str, object]:
    """FLOPs of a concrete function's graph by TensorFlow's own per-op statistics (the ones
    ``tf.compat.v1.profiler``'s ``float_operation()`` view sums), over the ops that actually run.

    The traced graph also holds ops whose results nothing uses (e.g. gradients of D's weights in a
    G update: the tape's MatMul gradient emits both halves), which Grappler prunes before running.
    So besides the profiler's total over the whole graph, the ops are restricted to those the outputs
    and the stateful ops (variable updates) depend on. Ops inside nested function calls, if any, are
    not counted and are listed under ``uncounted``.
    """
    import tensorflow as tf
    from tensorflow.python.framework import ops as ops_lib

    graph = concrete_fn.graph
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
    out = {"graph_total": 0, "total": 0, "matmul_conv": 0, "by_type": {}, "uncounted": [], "note": ""}
    for op in all_ops:
        try:
            v = ops_lib.get_stats_for_node_def(graph, op.node_def, "flops").value
        except ValueError:
            v = None
        v = int(v or 0)
        out["graph_total"] += v
        if op.name not in live:
            continue
        if op.type in _CALL_OPS:
            out["uncounted"].append(op.type)
        out["total"] += v
        if op.type in MATMUL_OPS:
            out["matmul_conv"] += v
            out["by_type"][op.type] = out["by_type"].get(op.type, 0) + v
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


def matmul_rate(n: int, repeats: int) -> Dict[str, object]:
    """float32 ``n x n`` matmul in TensorFlow: ``2 n^3`` FLOPs, median over ``repeats`` runs."""
    import tensorflow as tf

    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    t = time_calls(f, (), warmup=2, steps=repeats)
    flops = 2 * n ** 3
    return {"n": n, "flops": flops, "median_s": t["median_s"], "gflops": flops / t["median_s"] / 1e9,
            "best_gflops": flops / t["min_s"] / 1e9}


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

def straightforward_cogan_step(gan) -> Callable:
    """The baseline: the CoGAN step written as the original graph computes it. G1 and G2 are each
    computed on their own (``generate_one``: the shared trunk runs once per domain, forward and
    backward), D1 and D2 separately on real and fake, G recomputed for every update. Same z, same
    updates and the same trainable weights afterwards as the port's step (the trunk's BatchNorm
    moving averages are updated once per domain here)."""
    import tensorflow as tf
    from cogan_tf.train import apply_gradients

    g, m = gan.generator, gan.model_cfg

    def fakes(z):
        return g.generate_one(z, 1, training=True), g.generate_one(z, 2, training=True)

    def step(x1, x2):
        x1 = tf.cast(x1, tf.float32) / 255.0
        x2 = tf.cast(x2, tf.float32) / 255.0
        z = gan.rng.normal([tf.shape(x1)[0], m.z_dim])
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


def recompute_cogan_step(gan) -> Callable:
    """The port's step before it reused the D update's G forward pass for the first G update: G runs
    forward once per update (three times a step), the shared trunk once for both domains. Same
    trainable weights afterwards as the port's step; G's BatchNorm moving averages equal up to rounding."""
    import tensorflow as tf
    from cogan_tf.train import apply_gradients

    g, m = gan.generator, gan.model_cfg

    def step(x1, x2):
        x1 = tf.cast(x1, tf.float32) / 255.0
        x2 = tf.cast(x2, tf.float32) / 255.0
        z = gan.rng.normal([tf.shape(x1)[0], m.z_dim])
        with tf.GradientTape() as tape:
            fake1, fake2 = g(z, training=True)
            d_out = gan.d_losses(x1, x2, fake1, fake2, training=True)
        apply_gradients(gan.d_opt, tape, d_out["d_loss"], gan.d_vars)
        for _ in range(m.g_updates_per_step):
            with tf.GradientTape() as tape:
                fake1, fake2 = g(z, training=True)
                g_out = gan.g_losses(fake1, fake2, training=True)
            apply_gradients(gan.g_opt, tape, g_out["g_loss"], gan.g_vars)
        return {**d_out, **g_out}

    return step


COGAN_STEPS = {"straightforward": straightforward_cogan_step, "recompute": recompute_cogan_step}


@dataclasses.dataclass
class Row:
    model: str
    variant: str
    batch: int
    jit_compile: bool
    flops_analytic: int
    step_count: Optional[StepCount] = None
    extra: dict = dataclasses.field(default_factory=dict)


def make_model(name: str, batch: int, jit_compile: bool, seed: int = 0):
    """A built GAN of ``name`` at ``batch`` and one batch of random uint8 inputs for its step."""
    import numpy as np
    import keras
    from cogan_tf import config as C, runner

    ckpt = tempfile.mkdtemp(prefix="cogan_bench_")
    cfg = C.TrainConfig(model=name, batch_size=batch, seed=seed, jit_compile=jit_compile, checkpoint_dir=ckpt,
                        log_every=0, sample_every=0, save_every=0)
    rng = np.random.default_rng(seed)
    n_arrays = 2 if name == "cogan" else 1
    arrays = [rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8) for _ in range(n_arrays)]
    gan = runner.make_gan(C.MODEL_CONFIGS[name](), cfg, arrays=arrays)
    keras.utils.set_random_seed(seed)
    strategy = getattr(gan, "strategy", None)  # one device here, whatever the model supports
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        gan.build()
    import tensorflow as tf

    inputs = tuple(tf.constant(a) for a in arrays)  # uint8, on the device, scaled inside the step
    return gan, inputs


def model_rows(name: str, batch: int, jit_compile: bool, cogan_variants: Sequence[str]) -> List[Row]:
    if name == "cogan":
        from cogan_tf.config import CoganConfig

        m = CoganConfig()
        port = cogan_step_count(m, reuse_g_forward=True)
        rows = [Row(name, "port" + ("+xla" if jit_compile else ""), batch, jit_compile, 0, port)]
        if "xla" in cogan_variants and not jit_compile:
            rows.append(Row(name, "port+xla", batch, True, 0, port))
        if "recompute" in cogan_variants:
            rows.append(Row(name, "recompute", batch, False, 0, cogan_step_count(m)))
        if "straightforward" in cogan_variants:
            rows.append(Row(name, "straightforward", batch, False, 0, cogan_step_count(m, trunk_per_domain=True)))
        for r in rows:
            r.flops_analytic = r.step_count.flops(batch)
        return rows
    raise NotImplementedError(name)


def run_row(row: Row, warmup: int, steps: int, profile: bool) -> dict:
    import tensorflow as tf

    reset_peak_rss()
    tf_memory_info(reset=True)
    rss0 = _rss_mb("VmRSS")
    gan, inputs = make_model(row.model, row.batch, row.jit_compile)
    py_step = COGAN_STEPS[row.variant](gan) if row.variant in COGAN_STEPS else gan.train_step
    fn = tf.function(py_step, jit_compile=row.jit_compile)
    t = time_calls(fn, inputs, warmup=warmup, steps=steps, cycle=int(getattr(gan, "step_cycle", 1)))
    rec = {"model": row.model, "variant": row.variant, "batch": row.batch, "jit_compile": row.jit_compile}
    rec.update(step_ms=t["median_s"] * 1e3, step_ms_mean=t["mean_s"] * 1e3, step_ms_min=t["min_s"] * 1e3,
               steps_per_s=1.0 / t["median_s"], images_per_s=row.batch / t["median_s"],
               first_call_s=t["first_call_s"], timed_steps=steps, warmup=warmup)
    rec["flops_analytic"] = row.flops_analytic
    rec["gflops_per_s"] = row.flops_analytic / t["median_s"] / 1e9
    if row.step_count is not None:
        rec["analytic_passes"] = row.step_count.passes()
    if profile:
        try:
            rec["profiler"] = profiler_flops(fn.get_concrete_function(*inputs))
        except Exception as e:  # noqa: BLE001 - report why the cross-check could not run
            rec["profiler"] = {"note": f"could not count: {type(e).__name__}: {e}"}
    rec["peak_rss_mb"] = peak_rss_mb()
    rec["rss_before_mb"] = rss0
    rec["tf_memory_info"] = tf_memory_info()
    rec.update(row.extra)
    return rec


# --- report -----------------------------------------------------------------------------------------

def format_table(result: dict) -> str:
    mm = result["matmul"]
    lines = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, TF "
             f"{result['machine']['tensorflow']}; load average {result['loadavg_start']} -> {result['loadavg_end']}",
             f"float32 matmul {mm['n']}x{mm['n']}: {mm['gflops']:.1f} GFLOP/s (median of {result['matmul_repeats']})",
             ""]
    head = (f"{'model':<11}{'variant':<17}{'batch':>6}{'step ms':>9}{'steps/s':>9}{'img/s':>9}"
            f"{'GFLOP/step':>11}{'prof.':>8}{'GFLOP/s':>9}{'%matmul':>8}{'peak MB':>9}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        prof = r.get("profiler", {})
        pm = prof.get("matmul_conv")
        lines.append(f"{r['model']:<11}{r['variant']:<17}{r['batch']:>6}{r['step_ms']:>9.1f}{r['steps_per_s']:>9.2f}"
                     f"{r['images_per_s']:>9.0f}{r['flops_analytic'] / 1e9:>11.2f}"
                     f"{(pm / 1e9 if pm else float('nan')):>8.2f}{r['gflops_per_s']:>9.1f}"
                     f"{100 * r['fraction_of_matmul']:>7.0f}%{r['peak_rss_mb']:>9.0f}")
    lines.append("")
    lines.append("GFLOP/step: analytic matmul/conv FLOPs of one step; prof.: the same ops counted by TensorFlow "
                 "on the step's graph (ops that run)")
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
    result["matmul"] = matmul_rate(matmul_n, matmul_repeats)
    log(f"float32 matmul {matmul_n}x{matmul_n}: {result['matmul']['gflops']:.1f} GFLOP/s")
    for name in models:
        if name not in DEFAULT_BATCH:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(ALL_MODELS)}")
        try:
            rows = model_rows(name, batch_size or DEFAULT_BATCH[name], jit_compile, cogan_variants)
        except (ImportError, NotImplementedError) as e:
            result["skipped"][name] = f"{type(e).__name__}: {e}"
            log(f"skipped {name}: {result['skipped'][name]}")
            continue
        for row in rows:
            rec = run_row(row, warmup, steps, profile)
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


def main(argv):
    del argv
    import tensorflow as tf

    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    quick = FLAGS.quick
    result = run(FLAGS.models, FLAGS.cogan_variants,
                 steps=2 if quick else FLAGS.steps, warmup=1 if quick else FLAGS.warmup,
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
