"""cogan_tf/bench/torch_peer.py, the benchmark's ``torch_eager`` row: the CoGAN step in plain PyTorch eager holds
the port's weights and makes its images, trains what the port's step trains; without PyTorch (not a dependency)
the row is refused in one line before the benchmark starts."""

import os
import subprocess
import sys

import pytest

from cogan_tf.config import CoganConfig
from tests.conftest import ROOT, without_tensorflow


def test_the_pytorch_row_is_refused_in_one_line_without_pytorch(tmp_path):
    env = without_tensorflow(tmp_path)
    shim = tmp_path / "no_torch" / "torch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no PyTorch here')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--out", str(tmp_path / "b.json"), "--models", "cogan",
                        "--cogan_variants", "straightforward,torch_eager"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --cogan_variants=torch_eager needs PyTorch, which cogan_tf does not depend on: pip install torch"]
    assert not (tmp_path / "b.json").exists()


def test_the_pytorch_peer_is_the_ports_network_and_updates():
    """The benchmark's PyTorch row (optional: PyTorch is not a dependency) holds the port's weights, shape for
    shape in count, makes images of the port's shape, and its step trains both networks but never g_h0 with its
    BatchNorm and PReLU, which the faithful network does not call (no gradient, as in the port)."""
    torch = pytest.importorskip("torch", reason="PyTorch is optional: only the benchmark's torch_eager row needs it")
    from cogan_tf.bench import torch_peer
    from cogan_tf.cogan_networks import build_cogan

    cfg = CoganConfig()
    g, d = torch_peer._networks(cfg)
    kg, kd = build_cogan(cfg)
    for ours, theirs in ((kg, g), (kd, d)):
        keras_sizes = sorted(int(v.numpy().size) for v in ours.trainable_variables)
        torch_sizes = sorted(p.numel() for p in theirs.parameters())
        assert torch_sizes == keras_sizes
    fake1, fake2 = g(torch.zeros(2, cfg.z_dim))
    assert tuple(fake1.shape) == tuple(fake2.shape) == (2, 1, 28, 28)
    assert tuple(d.logits(fake1, 1).shape) == (2, 1)
    step, info = torch_peer.build(8, cfg)
    nets = step.networks
    before = [{n: p.detach().clone() for n, p in net.named_parameters()} for net in nets]
    loss = step()
    assert torch.isfinite(loss) and info["torch_threads"] >= 1
    for net, old in zip(nets, before):
        for n, p in net.named_parameters():
            assert torch.equal(p, old[n]) == n.startswith(("h0.", "bn0.", "act0.")), n
