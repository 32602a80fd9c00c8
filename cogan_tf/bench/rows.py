"""The benchmark's rows and their timing (:func:`run`, what ``python -m cogan_tf.bench`` calls): which steps a run
times for each model (:class:`Row`), building each row's model and inputs, the warm-up, the round-robin timing
beside the matmul, and the ratios between rows. What one run measures: :mod:`cogan_tf.bench`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from cogan_tf import config as C
from cogan_tf.bench.flops import (clustergan_step_counts, cogan_paper_step_count, cogan_step_count, profiler_flops,
                                  vanilla_step_count)
from cogan_tf.bench.steps import STEPS, step_for
from cogan_tf.bench.machine import (matmul_calls, matmul_fn, matmul_record, machine, peak_rss_mb, reset_peak_rss,
                                    rss_mb, sync, time_calls, tf_memory_info)

ALL_MODELS = C.MODELS
DEFAULT_BATCH = {m: C.defaults_for(m)["batch_size"] for m in ALL_MODELS}
COGAN_VARIANTS = ("straightforward", "recompute", "unfused_heads", "no_reuse", "deconv_heads", "unfused_bn",
                  "dense_matmul_grad", "fused_scalar_bn", "stem_deconv_grad", "plain_grads", "tf_prelu", "tf_bn_prelu",
                  "plain_elementwise", "plain_ops", "xla",
                  "bfloat16", "float16", "loop", "bn_per_feature", "paper", "paper_plain", "paper_deconv",
                  "paper_tf_prelu", "paper_xla", "conditional", "torch_eager")
# The port's CoGAN step without one of its written gradients or XLA clusters, or without several (its ratio to
# each is reported).
GRADIENT_LEVER_ROWS = ("dense_matmul_grad", "fused_scalar_bn", "stem_deconv_grad", "plain_grads", "tf_prelu",
                       "tf_bn_prelu", "plain_elementwise", "plain_ops")
# CoGAN --recipe paper / conditional rows (the paper's network, docs/PERFORMANCE.md): paper (its step),
# paper_plain (every layer's plain ops: the step before its speed levers), paper_deconv (G's l1 forward as a
# transposed convolution instead of a matmul), paper_tf_prelu (the PReLUs' written gradients as TensorFlow's ops, not
# XLA clusters), paper_xla (the step under XLA), conditional (the conditional GAN's).
COGAN_PAPER_VARIANTS = ("paper", "paper_plain", "paper_deconv", "paper_tf_prelu", "paper_xla", "conditional")
# Rows that time the port's own step on another CoGAN config: what a faithful quirk costs.
COGAN_CONFIG_VARIANTS = {"bn_per_feature": {"bn_per_feature": True}}
# ClusterGAN --recipe paper rows: paper (its critic update and its G+E update, each on its own),
# paper_cycle (the loop's step over whole 1:5 cycles), paper_bfloat16 (the two updates under bfloat16),
# paper_plain (the two updates with Keras's own layer gradients: before the written ones), paper_xla (the
# two updates compiled with XLA).
CLUSTERGAN_VARIANTS = ("paper", "paper_cycle", "paper_bfloat16", "paper_plain", "paper_xla")
# Those that time the critic and G+E updates each on its own: the suffix of their two rows' names.
CLUSTERGAN_ROW_SUFFIX = {"paper": "", "paper_bfloat16": "_bf16", "paper_plain": "_plain", "paper_xla": "_xla"}
PAPER = C.CLUSTERGAN_RECIPES["paper"]
PAPER_BATCH = C.defaults_for("clustergan", "paper")["batch_size"]

@dataclasses.dataclass
class Row:
    """One timed step. ``parts``: name -> (its analytic count, how many times per step it runs on
    average); ``cycle``: calls per timed block (ClusterGAN's G+E update comes every g_every-th step);
    ``step``: a key of :data:`STEPS`, the step timed when it is not the model's own train_step."""

    model: str
    variant: str
    batch: int
    jit_compile: bool
    parts: Dict[str, tuple]
    cycle: int = 1
    mixed_precision: Optional[str] = None  # a TrainConfig.mixed_precision value; None: float32
    model_overrides: Optional[dict] = None  # model config fields that differ from the default ones
    adam: str = "tf1"  # the optimizers' arithmetic (TrainConfig.adam)
    step: Optional[str] = None

    @property
    def flops_analytic(self) -> float:
        return sum(count.flops(self.batch) * per_step for count, per_step in self.parts.values())


def row_variants(model: str) -> List[str]:
    """The variant names of every step row of ``model`` (as the table prints them; not ``loop``, which times
    the training loop), without building them."""
    if model == "cogan":
        return ["port", "port+xla", "keras_adam"] + [v for v in COGAN_VARIANTS if v not in ("xla", "loop")]
    if model == "clustergan":
        return ["port", "keras_adam"] + [f"paper_{u}{s}" for s in CLUSTERGAN_ROW_SUFFIX.values()
                                         for u in ("critic", "ge")] + ["paper_cycle"]
    return ["port", "keras_adam"]


def make_model(name: str, batch: int, jit_compile: bool, seed: int = 0, mixed_precision: Optional[str] = None,
               model_overrides: Optional[dict] = None, adam: str = "tf1"):
    """A built GAN of ``name`` at ``batch`` (and precision, model config fields ``model_overrides`` and Adam's
    arithmetic ``adam``)
    and one batch of random uint8 inputs for its step."""
    import numpy as np
    import keras
    import tensorflow as tf
    from cogan_tf import gan as gan_lib, runner

    ckpt = os.path.join(tempfile.gettempdir(), "cogan_bench_no_checkpoints")  # never written: nothing is saved
    cfg = C.TrainConfig(model=name, batch_size=batch, seed=seed, jit_compile=jit_compile, checkpoint_dir=ckpt,
                        log_every=0, sample_every=0, save_every=0, mixed_precision=mixed_precision, adam=adam)
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
                {"step": (cogan_step_count(m, reuse_g_forward=True, subpixel_heads=True, subpixel_stem_grad=True), 1)})]
    if "xla" in cogan_variants and not jit_compile:
        rows.append(Row(name, "port+xla", batch, True, rows[0].parts))
    for variant in ("bfloat16", "float16"):
        if variant in cogan_variants:
            rows.append(Row(name, variant, batch, jit_compile, rows[0].parts, mixed_precision=C.MIXED_PRECISION[variant]))
    # Conv2DBackpropInput for D's stem input gradients there:
    plain_stem = ("recompute", "unfused_bn", "stem_deconv_grad", "plain_grads", "plain_ops")
    for variant in ("recompute", "no_reuse", "unfused_heads", "deconv_heads", "unfused_bn") + GRADIENT_LEVER_ROWS:
        if variant in cogan_variants:
            count = cogan_step_count(m, reuse_g_forward=variant not in ("recompute", "no_reuse"),
                                     subpixel_heads=variant not in ("recompute", "unfused_heads", "deconv_heads"),
                                     subpixel_stem_grad=variant not in plain_stem)
            # plain_ops: also Keras's Adam: every lever of docs/PERFORMANCE.md, "Nearer the matmul rate", off.
            rows.append(Row(name, variant, batch, False, {"step": (count, 1)},
                            adam="keras" if variant == "plain_ops" else "tf1"))
    for variant, overrides in COGAN_CONFIG_VARIANTS.items():
        if variant in cogan_variants:
            rows.append(Row(name, variant, batch, jit_compile, rows[0].parts, model_overrides=overrides))
    if "loop" in cogan_variants:
        rows.append(Row(name, "loop", batch, jit_compile, rows[0].parts))
    if "straightforward" in cogan_variants:
        rows.append(Row(name, "straightforward", batch, False,
                        {"step": (cogan_step_count(m, trunk_per_domain=True), 1)}))
    if "torch_eager" in cogan_variants:  # the same sums as deconv_heads, in PyTorch (bench/torch_peer.py)
        rows.append(Row(name, "torch_eager", batch, False, {"step": (cogan_step_count(
            m, reuse_g_forward=True, subpixel_heads=False, subpixel_stem_grad=False), 1)}, step="torch"))
    return rows + cogan_paper_rows(batch, jit_compile, cogan_variants)


def cogan_paper_rows(batch: int, jit_compile: bool, variants: Sequence[str]) -> List[Row]:
    """The rows of the CoGAN's ``--recipe paper`` / ``conditional`` asked for (of :data:`COGAN_PAPER_VARIANTS`)."""
    rows = []
    for variant in COGAN_PAPER_VARIANTS:
        if variant not in variants or (variant == "paper_xla" and jit_compile):
            continue
        m = C.cogan_config("conditional" if variant == "conditional" else "paper")
        fast = variant not in ("paper_plain", "paper_deconv")
        rows.append(Row("cogan", variant, batch, jit_compile or variant == "paper_xla",
                        {"step": (cogan_paper_step_count(m, fast=fast), 1)},
                        model_overrides=C.COGAN_RECIPES[m.recipe],
                        step=f"cogan_{variant}" if f"cogan_{variant}" in STEPS else None))
    return rows


def clustergan_paper_rows(batch: int, jit_compile: bool, variants: Sequence[str]) -> List[Row]:
    """The rows of ClusterGAN ``--recipe paper`` asked for (``variants``, of :data:`CLUSTERGAN_VARIANTS`)."""
    import cogan_tf.clustergan  # noqa: F401 - skipped, with the reason, if the model is not there

    m = C.clustergan_config("paper")
    c = clustergan_step_counts(m)
    # Keras's own LeakyReLU gradient backpropagates its zero second derivative (TensorFlow's count sees it).
    plain = clustergan_step_counts(m, zero_path=True)
    rows = []
    bf16 = C.MIXED_PRECISION["bfloat16"]
    for variant, precision, count, jit in (
            ("paper", None, c, jit_compile), ("paper_bfloat16", bf16, c, jit_compile),
            ("paper_plain", None, plain, jit_compile), ("paper_xla", None, c, True)):
        suffix = CLUSTERGAN_ROW_SUFFIX[variant]
        if variant in variants and not (variant == "paper_xla" and jit_compile):  # --jit_compile: paper is XLA
            step = "_plain" if variant == "paper_plain" else ""
            rows += [Row("clustergan", f"paper_critic{suffix}", batch, jit, {"step": (count["d"], 1)},
                         mixed_precision=precision, model_overrides=PAPER, step=f"paper_critic{step}"),
                     Row("clustergan", f"paper_ge{suffix}", batch, jit, {"step": (count["ge"], 1)},
                         mixed_precision=precision, model_overrides=PAPER, step=f"paper_ge{step}")]
    if "paper_cycle" in variants:
        rows.append(Row("clustergan", "paper_cycle", batch, jit_compile,
                        {"d": (c["d"], 1), "ge": (c["ge"], 1.0 / m.g_every)}, cycle=m.g_every, model_overrides=PAPER))
    return rows


def time_loop(name: str, batch: int, jit_compile: bool, warmup: int, steps: int, seed: int = 0) -> Dict[str, object]:
    """The port's step inside the real training loop (``train.fit``: tf.data with prefetch, the
    per-step loss read-back, log line and TensorBoard scalars; no grids, no checkpoints until the end):
    the time between consecutive log lines after ``warmup`` steps."""
    import numpy as np
    from cogan_tf import runner

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
    rec = {"model": row.model, "variant": row.variant, "batch": row.batch, "jit_compile": row.jit_compile,
           "cycle": row.cycle, "flops_analytic": row.flops_analytic,
           "analytic_passes": {k: {"per_step": per, "passes": count.passes()} for k, (count, per) in row.parts.items()}}
    if row.step == "torch":
        from cogan_tf.bench import torch_peer

        fn, info = torch_peer.build(row.batch, C.MODEL_CONFIGS[row.model]())
        return {**rec, "tf_built_mb": None, **info, "_torch_step": fn}
    mem0 = tf_memory_info()
    gan, inputs = make_model(row.model, row.batch, row.jit_compile, mixed_precision=row.mixed_precision,
                             model_overrides=row.model_overrides, adam=row.adam)
    mem1 = tf_memory_info()
    built = (mem1["current"] - mem0["current"]) / 2 ** 20 if mem0 and mem1 else None
    return {**rec, "tf_built_mb": built, "_gan": gan, "_inputs": inputs}


def prepare_row(row: Row, rec: dict, warmup: int, profile: bool) -> dict:
    """Compile the row's step and run the warm-up (the first call, tracing and compiling, timed
    apart), count its FLOPs both ways, and record its memory: the process's peak resident memory
    during the warm-up (the high-water mark is reset first) and TensorFlow's allocator peak for the
    row alone (what its build kept plus the warm-up's peak above what was allocated before it)."""
    import tensorflow as tf

    reset_peak_rss()
    tf_memory_info(reset=True)
    rss0 = rss_mb("VmRSS")
    mem0 = tf_memory_info()
    if "_torch_step" in rec:  # PyTorch eager: nothing to compile, and TensorFlow's profiler cannot count it
        fn, inputs, profile = rec.pop("_torch_step"), (), False
        rec["flops_check"] = {"match": None, "note": "a PyTorch step: not in TensorFlow's graph"}
    else:
        gan, inputs = rec.pop("_gan"), rec.pop("_inputs")
        fn = tf.function(step_for(gan, row.variant, row.step), jit_compile=row.jit_compile)
    t0 = time.perf_counter()
    sync(fn(*inputs))
    rec["first_call_s"] = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0) * row.cycle):
        sync(fn(*inputs))
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
    q1 = statistics.quantiles(times, n=4)[0] if len(times) > 1 else med
    rec.update(step_ms=med * 1e3, step_ms_mean=statistics.fmean(times) * 1e3, step_ms_min=min(times) * 1e3,
               step_ms_q1=q1 * 1e3,  # the first quartile: on a loaded machine, the step nearest its own speed
               steps_per_s=1.0 / med, images_per_s=rec["batch"] / med, timed_steps=len(times) * rec["cycle"],
               gflops_per_s=rec["flops_analytic"] / med / 1e9)
    rec.pop("_call", None)
    return rec


def time_round_robin(recs: Sequence[dict], steps: int, matmul=None) -> List[List[float]]:
    """``steps`` rounds; in each, every row runs one block of ``cycle`` steps (waited for), round r starting
    at row r, then the matmul once. Interleaving gives every row the same share of whatever else the machine
    is doing, so their ratios hold up on a noisy machine better than rows timed one after another."""
    times: List[List[float]] = [[] for _ in recs]
    mm: List[float] = []
    for rec in recs:  # one untimed round: nothing in the first round pays for what ran before it
        sync(rec["_call"]())
    for r in range(steps):
        # Each round starts at the next row, so that no row always follows the matmul (or the same other row).
        for i in [(r + j) % len(recs) for j in range(len(recs))]:
            rec = recs[i]
            t0 = time.perf_counter()
            for _ in range(rec["cycle"]):
                out = rec["_call"]()
            sync(out)
            times[i].append((time.perf_counter() - t0) / rec["cycle"])
        if matmul is not None:
            t0 = time.perf_counter()
            sync(matmul())
            mm.append(time.perf_counter() - t0)
    return times + [mm]


def run_loop_row(row: Row, warmup: int, steps: int) -> dict:
    reset_peak_rss()
    tf_memory_info(reset=True)
    rss0 = rss_mb("VmRSS")
    mem0 = tf_memory_info()
    t = time_loop(row.model, row.batch, row.jit_compile, max(warmup, 1), steps)
    mem = tf_memory_info()
    rec = {"model": row.model, "variant": row.variant, "batch": row.batch, "jit_compile": row.jit_compile,
           "cycle": 1, "flops_analytic": row.flops_analytic, "first_call_s": t["first_call_s"], "warmup": warmup,
           "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss0, "tf_memory": mem, "tf_peak_mb": _tf_row_peak_mb(mem0, mem),
           "note": "timed on its own, after the others"}
    return finish_row(rec, t["times_s"])


# --- report -----------------------------------------------------------------------------------------

def run(models: Sequence[str], cogan_variants: Sequence[str], steps: int, warmup: int, batch_size: int,
        jit_compile: bool, matmul_n: int, matmul_repeats: int, profile: bool = True, log=print,
        clustergan_variants: Sequence[str] = (), keras_adam: bool = False) -> dict:
    import tensorflow as tf  # noqa: F401

    result = {"command": " ".join([os.path.basename(sys.executable), "-m", "cogan_tf.bench"] + sys.argv[1:]),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
              "loadavg_start": [round(x, 2) for x in os.getloadavg()], "matmul_repeats": matmul_repeats,
              "rows": [], "ratios": {}, "skipped": {}}
    calls = matmul_calls()
    mm_fn = matmul_fn(matmul_n, calls)
    t = time_calls(mm_fn, (), warmup=2, steps=matmul_repeats)
    mm_times = list(t["times_s"])
    log(f"float32 matmul {matmul_n}x{matmul_n}: {matmul_record(matmul_n, mm_times, calls)['gflops']:.1f} GFLOP/s")
    rows: List[Row] = []
    for name in models:
        if name not in DEFAULT_BATCH:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(ALL_MODELS)}")
        try:
            rows += model_rows(name, batch_size or DEFAULT_BATCH[name], jit_compile, cogan_variants)
            if keras_adam:  # the model's own step with Keras's Adam arithmetic instead of TF1's
                rows.append(dataclasses.replace(next(r for r in rows if r.model == name), variant="keras_adam",
                                                adam="keras"))
            if name == "clustergan":
                rows += clustergan_paper_rows(batch_size or PAPER_BATCH, jit_compile, clustergan_variants)
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
    result["matmul"] = matmul_record(matmul_n, mm_times, calls)
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
            if model == "cogan" and variant != "straightforward" and variant not in COGAN_PAPER_VARIANTS:
                result["ratios"][f"cogan {variant} / straightforward (steps/s)"] = r["steps_per_s"] / base["steps_per_s"]
    for model in ALL_MODELS:
        if (model, "keras_adam") in by and (model, "port") in by:
            ratio = by[(model, "port")]["steps_per_s"] / by[(model, "keras_adam")]["steps_per_s"]
            result["ratios"][f"{model} port / keras_adam (steps/s)"] = ratio
    port = by.get(("cogan", "port"))
    for variant in GRADIENT_LEVER_ROWS + ("torch_eager",):
        if port is not None and ("cogan", variant) in by:
            result["ratios"][f"cogan port / {variant} (steps/s)"] = port["steps_per_s"] / by[("cogan", variant)]["steps_per_s"]
    for variant in ("paper_plain", "paper_deconv", "paper_tf_prelu", "paper_xla"):
        if ("cogan", "paper") in by and ("cogan", variant) in by:
            ratio = by[("cogan", "paper")]["steps_per_s"] / by[("cogan", variant)]["steps_per_s"]
            result["ratios"][f"cogan paper / {variant} (steps/s)"] = ratio
    for (model, variant), r in by.items():
        for suffix in ("_bf16", "_xla"):
            if model == "clustergan" and variant.endswith(suffix) and ("clustergan", variant[:-len(suffix)]) in by:
                base = by[("clustergan", variant[:-len(suffix)])]
                ratio = r["steps_per_s"] / base["steps_per_s"]
                result["ratios"][f"clustergan {variant} / {base['variant']} (steps/s)"] = ratio
        if model == "clustergan" and variant.endswith("_plain") and ("clustergan", variant[:-6]) in by:
            port = by[("clustergan", variant[:-6])]
            ratio = port["steps_per_s"] / r["steps_per_s"]
            result["ratios"][f"clustergan {port['variant']} / {variant} (steps/s)"] = ratio
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result
