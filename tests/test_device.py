"""Where a run trains: its first line names the device; --device chooses it (a GPU that is not there is
refused in one line); an NVIDIA GPU TensorFlow cannot use gets one line saying what to install; --tf32 and
--deterministic are applied, recorded in config.json, and a resume that changes them is refused."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from cogan_tf import config as C, device, runner
from cogan_tf.errors import UsageError
from tests.conftest import ROOT, fake_images, quiet, train_config, write_fake_dataset


def fake_driver(tmp_path, n=1):
    """A stand-in for /proc/driver/nvidia/gpus with ``n`` GPUs (one folder per GPU, as the driver's)."""
    proc = tmp_path / "nvidia_gpus"
    for i in range(n):
        (proc / f"0000:0{i}:00.0").mkdir(parents=True)
    return str(proc)


def test_main_names_the_device_in_its_first_line(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--is_train", "True", "--batch_size", "8",
                        "--max_steps", "0", "--data_dir", data_dir], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    first = r.stdout.splitlines()[0]
    # This machine has no GPU: the CPU, its cores and memory (the model name varies by machine).
    assert first.startswith(" [*] device: CPU (") and f", {os.cpu_count()} cores, " in first and "GiB)" in first, first


def test_a_gpu_tensorflow_cannot_use_is_named_with_what_to_install(tmp_path, monkeypatch):
    assert device.unused_gpu(tf, str(tmp_path / "no_driver")) is None  # no NVIDIA driver: nothing to say
    # Whether this machine has the CUDA libraries installed (PyTorch's wheels bring them too) is set here, both ways.
    monkeypatch.setattr(device, "_cuda_libraries_installed", lambda: False)
    proc, lines = fake_driver(tmp_path, 2), []
    device.configure(C.TrainConfig(), lines.append, proc_dir=proc)
    assert len(lines) == 1 and lines[0].startswith(" [!] 2 NVIDIA GPU(s) here, but "), lines
    assert "pip install -e '.[cuda]'" in lines[0] and lines[0].endswith("Training on the CPU"), lines
    if tf.sysconfig.get_build_info().get("is_cuda_build"):  # with the libraries there, the driver is what is left
        monkeypatch.setattr(device, "_cuda_libraries_installed", lambda: True)
        lines = []
        device.configure(C.TrainConfig(), lines.append, proc_dir=proc)
        assert len(lines) == 1 and "check that the driver (nvidia-smi) suits CUDA" in lines[0], lines


def test_device_gpu_without_one_is_refused_in_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"^--device gpu: TensorFlow sees no GPU on this machine; train with "
                                         r"--device cpu or auto$"):
        runner.run(C.VanillaConfig(), train_config(tmp_path, model="vanilla", batch_size=8, device="gpu"),
                   arrays=fake_images(16), log=quiet)
    with pytest.raises(UsageError, match=r"^--device gpu: TensorFlow sees no GPU \(1 NVIDIA GPU\(s\) here, but "):
        device.configure(C.TrainConfig(device="gpu"), quiet, proc_dir=fake_driver(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoint")  # refused before anything was written


def test_device_lines_of_replicas_and_of_the_arithmetic():
    cfg = C.TrainConfig(deterministic=True)
    line = device.describe(tf.distribute.get_strategy(), cfg)
    assert line.startswith(" [*] device: CPU (") and line.endswith("; op determinism on"), line
    assert device.kind(tf.distribute.get_strategy()) == "cpu"


def test_tf32_and_determinism_recorded_applied_and_kept_on_resume(tmp_path):
    vanilla = C.VanillaConfig()
    x = fake_images(32)
    cfg = train_config(tmp_path, model="vanilla", batch_size=8, max_steps=2, tf32=True, deterministic=True)
    try:
        runner.run(vanilla, cfg, arrays=x, log=quiet)
        # Applied to this process (TF32 has no effect on a CPU, but the switch is TensorFlow's own).
        assert tf.config.experimental.tensor_float_32_execution_enabled()
        assert tf_config.is_op_determinism_enabled()
        ckpt_dir = os.path.join(cfg.checkpoint_dir, "vanilla_mnist_8_28")
        with open(os.path.join(ckpt_dir, "config.json")) as f:
            record = json.load(f)
        assert record["tf32"] is True and record["deterministic"] is True
        for field, flag in (("tf32", "--tf32"), ("deterministic", "--deterministic")):
            changed = train_config(tmp_path, model="vanilla", batch_size=8, max_steps=3,
                                   **{"tf32": True, "deterministic": True, field: False})
            with pytest.raises(UsageError, match=f"^{ckpt_dir} holds a checkpoint trained with {flag}: resume it with "
                                                 f"{flag}, or use a fresh --checkpoint_dir$"):
                runner.run(vanilla, changed, arrays=x, log=quiet)
        runner.run(vanilla, train_config(tmp_path, model="vanilla", batch_size=8, max_steps=3, tf32=True,
                                         deterministic=True), arrays=x, log=quiet)  # the same flags resume
        # The faithful default: float32 (TF32 off), no op determinism, also after a run that had them.
        runner.run(vanilla, train_config(tmp_path / "b", model="vanilla", batch_size=8, max_steps=1), arrays=x,
                   log=quiet)
        assert not tf.config.experimental.tensor_float_32_execution_enabled()
        assert not tf_config.is_op_determinism_enabled()
    finally:
        device.configure(C.TrainConfig())


@pytest.mark.parametrize("visible, driver, workers, expected", [
    ("0,1,2,3", 0, 2, ["0,1", "2,3"]),  # the launcher's CUDA_VISIBLE_DEVICES, in equal contiguous shares
    (None, 3, 2, ["0", "1"]),  # every GPU the driver reports; the one left over stays unused
    (None, 1, 2, ["0", "0"]),  # fewer GPUs than workers: they share (memory growth on)
    ("GPU-a1,GPU-b2", 0, 1, ["GPU-a1,GPU-b2"]),
    (None, 0, 2, [None, None]),  # no GPU: nothing set
    ("", 4, 2, [None, None]),  # GPUs hidden on purpose stay hidden
])
def test_the_launcher_gives_each_worker_its_own_gpus(tmp_path, visible, driver, workers, expected):
    from cogan_tf import launch

    base = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    proc = fake_driver(tmp_path, driver)
    envs = [launch.gpu_env(base, i, workers, proc_dir=proc) for i in range(workers)]
    assert [e.get("CUDA_VISIBLE_DEVICES") for e in envs] == expected
    assert all(e.get("TF_FORCE_GPU_ALLOW_GROWTH") == ("true" if e else None) for e in envs)


def test_launched_workers_get_their_cuda_visible_devices(tmp_path, monkeypatch, capfd):
    """The launcher's real processes: each worker's environment holds its own GPUs (the worker command is
    replaced by one that prints them)."""
    import signal
    from cogan_tf import launch

    popen = launch.subprocess.Popen
    show = "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ.get('TF_FORCE_GPU_ALLOW_GROWTH'))"
    monkeypatch.setattr(launch.subprocess, "Popen", lambda cmd, **kw: popen([sys.executable, "-c", show], **kw))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert launch.main(["--workers", "2", "--", "--max_steps", "1"]) == 0
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    out = sorted(line for line in capfd.readouterr().out.splitlines() if line.startswith("[worker"))
    assert out == ["[worker 0] 4,5 true", "[worker 1] 6,7 true"]
