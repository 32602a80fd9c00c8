"""What the benchmark measures the machine with: timed calls, a float32 matmul, resident memory and
TensorFlow's allocator statistics, and a description of the machine. TensorFlow is imported inside the
functions, so the command line refuses bad flags before it starts.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable, Dict, Optional, Sequence


def sync(out):
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)


def time_calls(fn: Callable, args, warmup: int, steps: int, cycle: int = 1) -> Dict[str, object]:
    """Call ``fn(*args)`` ``warmup`` times (the first traces and compiles: timed apart), then time
    ``steps`` blocks of ``cycle`` calls, each block waited for. Per-call time = block time / cycle."""
    t0 = time.perf_counter()
    sync(fn(*args))
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0) * cycle):
        sync(fn(*args))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        for _ in range(cycle):
            out = fn(*args)
        sync(out)
        times.append((time.perf_counter() - t0) / cycle)
    return {"first_call_s": first, "times_s": times, "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times), "min_s": min(times)}


def matmul_fn(n: int):
    """A compiled float32 ``n x n`` matmul (``2 n^3`` FLOPs); the sum waits for it and fetches little."""
    import tensorflow as tf

    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    return tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))


def matmul_record(n: int, times: Sequence[float]) -> Dict[str, object]:
    flops = 2 * n ** 3
    med = statistics.median(times)
    return {"n": n, "flops": flops, "median_s": med, "gflops": flops / med / 1e9,
            "best_gflops": flops / min(times) / 1e9, "repeats": len(times)}


def rss_mb(field: str) -> Optional[float]:
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
    hwm = rss_mb("VmHWM")
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
