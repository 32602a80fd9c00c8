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

from cogan_tf.device import describe_device, versions


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


def matmul_calls() -> int:
    """Matmuls per timed call of :func:`matmul_fn`: 1 on a CPU; on a GPU 20 chained ones, so the time is the
    device's throughput rather than one launch and one wait."""
    return 20 if compute_device().startswith("GPU") else 1


def matmul_fn(n: int, calls: int = 1):
    """A compiled float32 ``n x n`` matmul (``2 n^3`` FLOPs), ``calls`` of them chained; the sum waits for
    them and fetches little."""
    import tensorflow as tf

    a = tf.random.stateless_normal([n, n], seed=[1, 2]) / n ** 0.5
    b = tf.random.stateless_normal([n, n], seed=[3, 4]) / n ** 0.5

    def chained():
        x = a
        for _ in range(calls):
            x = tf.matmul(x, b)
        return tf.reduce_sum(x)

    return tf.function(chained)


def matmul_record(n: int, times: Sequence[float], calls: int = 1) -> Dict[str, object]:
    flops = 2 * n ** 3 * calls
    med = statistics.median(times)
    return {"n": n, "flops": flops, "median_s": med, "gflops": flops / med / 1e9,
            "best_gflops": flops / min(times) / 1e9, "repeats": len(times), "calls": calls}


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


def compute_device() -> str:
    """The device the benchmark's steps run on: TensorFlow's default, the first GPU if it has one."""
    import tensorflow as tf

    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


def tf_memory_info(reset: bool = False) -> Optional[Dict[str, int]]:
    """TensorFlow's own allocator statistics in bytes (current, peak) on the device the steps run on (a
    GPU's memory, not the host's, on a GPU), None where the device does not keep them; ``reset`` restarts
    the peak."""
    import tensorflow as tf

    try:
        if reset:
            tf.config.experimental.reset_memory_stats(compute_device())
            return None
        return dict(tf.config.experimental.get_memory_info(compute_device()))
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
        # The device the steps run on, by name and memory (a GPU count alone says neither), and the build.
        "device": describe_device(compute_device()),
        "build": versions(), "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
    }
