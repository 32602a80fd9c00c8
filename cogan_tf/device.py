"""Where a run trains, said in its first lines and chosen with ``--device``; its arithmetic (TF32) and
op determinism set before the first op; and, when this machine has an NVIDIA GPU that TensorFlow
cannot use, one line saying why and what to install.

- ``--device auto`` (the default): the GPUs TensorFlow sees, else the CPU; ``cpu``: the CPU even with
  GPUs (they are hidden from TensorFlow); ``gpu``: refused in one line when TensorFlow sees none.
- TF32 (``--tf32``): on Ampere and later GPUs TensorFlow computes float32 matmuls and convolutions with
  10-bit mantissas unless TF32 is off. Off by default: float32, as the original computed and as the
  equivalence tolerances (tests/tolerance.py) assume. No effect on a CPU.
- ``--deterministic``: TensorFlow's op determinism (deterministic cuDNN kernels, or an error naming an
  op that has none); what it guarantees and costs: README, "GPUs".

What the speed levers do on each device: :mod:`cogan_tf.levers`. No flag is read here: the entry
scripts pass a :class:`cogan_tf.config.TrainConfig`.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from typing import List, Optional, Sequence

from cogan_tf.errors import UsageError

# One entry per GPU the NVIDIA driver knows (Linux), whatever TensorFlow can use: found without TensorFlow.
NVIDIA_PROC = "/proc/driver/nvidia/gpus"
GIB = 2 ** 30


def nvidia_gpus(proc_dir: str = NVIDIA_PROC) -> int:
    """How many NVIDIA GPUs the driver reports on this machine (0 without a driver, or off Linux)."""
    try:
        return len(os.listdir(proc_dir))
    except OSError:
        return 0


def _cuda_libraries_installed() -> bool:
    """Whether the pip packages of ``tensorflow[and-cuda]`` (cuDNN among them) are installed."""
    try:
        return importlib.util.find_spec("nvidia.cudnn") is not None
    except (ImportError, ValueError):
        return False


def unused_gpu(tf, proc_dir: str = NVIDIA_PROC) -> Optional[str]:
    """Why TensorFlow uses none of this machine's NVIDIA GPUs, and what to do, as one clause; None when
    it sees one, when there is none, or when CUDA_VISIBLE_DEVICES hides them on purpose."""
    n = nvidia_gpus(proc_dir)
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1")
    if not n or hidden or tf.config.list_physical_devices("GPU"):
        return None
    info = tf.sysconfig.get_build_info()
    if not info.get("is_cuda_build"):
        return (f"{n} NVIDIA GPU(s) here, but this TensorFlow {tf.__version__} is built without CUDA: install a "
                "CUDA build (Linux: pip install -e '.[cuda]', which installs tensorflow[and-cuda])")
    if not _cuda_libraries_installed():
        return (f"{n} NVIDIA GPU(s) here, but the CUDA libraries TensorFlow loads (cuDNN, cuBLAS) are not "
                "installed: pip install -e '.[cuda]' (tensorflow[and-cuda])")
    return (f"{n} NVIDIA GPU(s) here, but TensorFlow could not use them: check that the driver (nvidia-smi) suits "
            f"CUDA {info.get('cuda_version', '?')}; TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's reason")


def _set_determinism(on: bool) -> None:
    # The public API has no way back, and a process (tests, the benchmark) may run several configs.
    from tensorflow.python.framework import config as tf_config

    if on != tf_config.is_op_determinism_enabled():
        (tf_config.enable_op_determinism if on else tf_config.disable_op_determinism)()


def configure(cfg, log=print, proc_dir: str = NVIDIA_PROC) -> None:
    """Apply ``cfg.device``, ``cfg.tf32`` and ``cfg.deterministic`` (a TrainConfig) to this process's
    TensorFlow, before its first op. A refused device is a one-line :class:`UsageError`; a GPU that
    TensorFlow cannot use is one ``[!]`` line when the device is ``auto``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = getattr(cfg, "device", "auto")
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow has started its devices already (a second run in one process)
            if tf.config.list_logical_devices("GPU"):
                raise UsageError("--device cpu: TensorFlow already runs on the GPU in this process; start a new "
                                 "process with --device cpu, or hide the GPUs with CUDA_VISIBLE_DEVICES=''") from None
    elif not gpus:
        why = unused_gpu(tf, proc_dir)
        if device == "gpu":
            raise UsageError("--device gpu: TensorFlow sees no GPU" + (f" ({why})" if why else " on this machine")
                             + "; train with --device cpu or auto")
        if why:
            log(f" [!] {why}. Training on the CPU")
    tf.config.experimental.enable_tensor_float_32_execution(bool(getattr(cfg, "tf32", False)))
    _set_determinism(bool(getattr(cfg, "deterministic", False)))


def strategy_devices(strategy) -> List[str]:
    """The devices ``strategy`` computes on in this process, short names (``GPU:0``, ``CPU:1``)."""
    import tensorflow as tf

    try:
        names = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy: TensorFlow's default device, the first GPU if it has one
        names = ["GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"]
    return [n.rsplit("device:", 1)[-1] for n in names]


def kind(strategy) -> str:
    """"gpu" when ``strategy`` computes on GPUs, else "cpu": what the speed levers follow."""
    return "gpu" if all(d.startswith("GPU") for d in strategy_devices(strategy)) else "cpu"


def cuda_total_memory(ordinal: int) -> Optional[int]:
    """Bytes of memory of CUDA device ``ordinal`` (the driver's count, as TensorFlow numbers its GPUs),
    None when the driver cannot say. TensorFlow itself reports only what it has allocated."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        dev, total = ctypes.c_int(), ctypes.c_size_t()
        if cuda.cuInit(0) or cuda.cuDeviceGet(ctypes.byref(dev), ordinal):
            return None
        return total.value if cuda.cuDeviceTotalMem_v2(ctypes.byref(total), dev) == 0 else None
    except (OSError, AttributeError):
        return None


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def meminfo_bytes(field: str) -> Optional[int]:
    """A ``/proc/meminfo`` entry in bytes (``MemTotal``, ``MemAvailable``; Linux), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_memory() -> Optional[int]:
    """Bytes of this machine's memory (Linux), None elsewhere."""
    return meminfo_bytes("MemTotal")


def _gib(n: Optional[int]) -> str:
    return "memory unknown" if n is None else f"{n / GIB:.1f} GiB"


def describe_device(name: str) -> str:
    """``GPU:0 NVIDIA A100-SXM4-40GB (39.4 GiB, compute capability 8.0)`` or ``CPU (<model>, N cores, M GiB)``."""
    import tensorflow as tf

    if name.startswith("GPU"):
        index = int(name.split(":")[1])
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[index]) if index < len(gpus) else {}
        cc = details.get("compute_capability")
        cc = f", compute capability {cc[0]}.{cc[1]}" if cc else ""
        return f"{name} {details.get('device_name', 'GPU')} ({_gib(cuda_total_memory(index))}{cc})"
    return f"CPU ({_cpu_name()}, {os.cpu_count()} cores, {_gib(host_memory())})"


def versions() -> str:
    """``TensorFlow 2.21.0, CUDA 12.5.1, cuDNN 9`` (the CUDA and cuDNN TensorFlow was built for)."""
    import tensorflow as tf

    info = tf.sysconfig.get_build_info()
    cuda = f", CUDA {info['cuda_version']}, cuDNN {info.get('cudnn_version', '?')}" if info.get("is_cuda_build") else ""
    return f"TensorFlow {tf.__version__}{cuda}"


def describe(strategy, cfg) -> str:
    """The run's device line: the devices it trains on (model, memory), and on a GPU its arithmetic."""
    import tensorflow as tf

    names = strategy_devices(strategy)
    cpus = [n for n in names if n.startswith("CPU")]
    shown: Sequence[str] = [describe_device(n) for n in names if not n.startswith("CPU")]
    if cpus:  # logical CPU devices (replicas in tests) are one processor
        shown = list(shown) + [describe_device("CPU") + (f" as {len(cpus)} replicas" if len(cpus) > 1 else "")]
    many = len(names) > 1 and not cpus
    head = f"devices ({len(names)} replicas)" if many else "device"
    if getattr(cfg, "strategy", "default") == "multiworker":
        head += " of this worker"
    line = f" [*] {head}: {'; '.join(shown)}"
    if any(not n.startswith("CPU") for n in names):
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        line += f"; {versions()}; TF32 {'on (--tf32)' if tf32 else 'off (float32)'}"
    return line + ("; op determinism on" if getattr(cfg, "deterministic", False) else "")
