"""The CoGAN step written in plain PyTorch eager: the benchmark's ``torch_eager`` row, the peer the port's step
is compared with (docs/PERFORMANCE.md). Not part of the package's dependencies: the row needs PyTorch
(``pip install torch``) and is refused in one line without it.

It is the faithful network (docs/ORIGINAL.md §1.2, §1.3: G's trunk z -> g_h1 -> g_h2 shared, one deconv head per
domain; D's stems per domain, d_h2 and d_h3 shared; BatchNorm's scalar statistics on the 2-D layers, quirk Q2,
unless the config has ``bn_per_feature``) and the same updates (one D update, then ``g_updates_per_step`` G
updates with the same z), written the way a PyTorch user writes a GAN step: ``nn`` layers in NCHW, G run once for
both domains, the first G update reusing the D update's G forward (``fake.detach()`` for D), D's weights frozen
during G's updates (``requires_grad_(False)``, so that D's weight gradients are not computed there, as the port's
tape does not), ``torch.optim.Adam``, no compilation. So it computes the same sums as the port's
``deconv_heads`` row, and the same FLOP count applies. Padding follows PyTorch's symmetric convention instead of
TensorFlow's "SAME" (1 before and 2 after): the same shapes and FLOPs, not the same numbers; the row times, it
does not compare values.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

from cogan_tf.config import CoganConfig

MISSING = "needs PyTorch, which cogan_tf does not depend on: pip install torch"


def available() -> bool:
    """Whether PyTorch imports (missing and broken installs alike are refused)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _networks(cfg: CoganConfig):
    import torch
    from torch import nn

    class ScalarBatchNorm(nn.Module):
        """Quirk Q2 on a 2-D input: one mean and variance over batch x features, per-feature gamma and beta,
        the moving averages holding that scalar (decay 0.9, as the port's)."""

        def __init__(self, n: int):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(n))
            self.beta = nn.Parameter(torch.zeros(n))
            self.register_buffer("moving_mean", torch.zeros(()))
            self.register_buffer("moving_var", torch.ones(()))

        def forward(self, x):
            mean, var = x.mean(), x.var(unbiased=False)
            with torch.no_grad():
                self.moving_mean.mul_(0.9).add_(0.1 * mean)
                self.moving_var.mul_(0.9).add_(0.1 * var)
            return (x - mean) * torch.rsqrt(var + 1e-5) * self.gamma + self.beta

    def bn_2d(n: int) -> nn.Module:
        return nn.BatchNorm1d(n, eps=1e-5, momentum=0.1) if cfg.bn_per_feature else ScalarBatchNorm(n)

    def deconv(cin: int, cout: int) -> nn.Module:  # 5x5, stride 2, doubling height and width
        return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)

    s4 = cfg.output_size // 4

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.h0 = nn.Linear(cfg.z_dim, 1024)  # the original's dead g_h0 unless h0_feeds_h1: no gradient
            self.h1 = nn.Linear(1024 if cfg.h0_feeds_h1 else cfg.z_dim, s4 * s4 * 128)
            self.bn0, self.bn1 = bn_2d(1024), bn_2d(s4 * s4 * 128)
            self.act0, self.act1, self.act2 = nn.PReLU(), nn.PReLU(), nn.PReLU()
            self.h2 = deconv(128, 128)
            self.bn2 = nn.BatchNorm2d(128, eps=1e-5, momentum=0.1)
            self.head1, self.head2 = deconv(128, cfg.c_dim), deconv(128, cfg.c_dim)

        def forward(self, z) -> Tuple:
            h = self.act0(self.bn0(self.h0(z))) if cfg.h0_feeds_h1 else z
            h = self.act1(self.bn1(self.h1(h))).view(-1, 128, s4, s4)
            h = self.act2(self.bn2(self.h2(h)))
            return torch.sigmoid(self.head1(h)), torch.sigmoid(self.head2(h))

    def stem() -> nn.Module:
        return nn.Sequential(nn.Conv2d(cfg.c_dim, cfg.d_h0_channels, 5, stride=2, padding=2), nn.PReLU(),
                             nn.Conv2d(cfg.d_h0_channels, 64, 5, stride=2, padding=2),
                             nn.BatchNorm2d(64, eps=1e-5, momentum=0.1), nn.PReLU())

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.stems = nn.ModuleList([stem(), stem()])
            self.h2 = nn.Linear(s4 * s4 * 64, 1024)
            self.bn2, self.act2 = bn_2d(1024), nn.PReLU()
            self.h3 = nn.Linear(1024, 1)

        def logits(self, x, domain: int):
            h = self.stems[domain - 1](x).flatten(1)
            return self.h3(self.act2(self.bn2(self.h2(h))))

    return Generator(), Discriminator()


def build(batch: int, cfg: CoganConfig = CoganConfig(), seed: int = 0) -> Tuple[Callable, Dict[str, object]]:
    """The step ``() -> d_loss`` on one fixed batch of random uint8 images per domain (as the TensorFlow rows'),
    and what the row records about PyTorch. The step's ``networks`` attribute holds its G and D."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    g, d = _networks(cfg)
    g.train()
    d.train()
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    rng = np.random.default_rng(seed)
    shape = (batch, cfg.c_dim, cfg.output_size, cfg.output_size)
    x1u8, x2u8 = (torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(2))

    def bce(logits, target: float):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def g_loss(fake1, fake2):
        return bce(d.logits(fake1, 1), 1.0) + bce(d.logits(fake2, 2), 1.0)

    def step():
        x1, x2 = x1u8.float() / 255.0, x2u8.float() / 255.0
        z = torch.randn(batch, cfg.z_dim)
        fake1, fake2 = g(z)
        d_loss = (bce(d.logits(x1, 1), 1.0) + bce(d.logits(fake1.detach(), 1), 0.0)
                  + bce(d.logits(x2, 2), 1.0) + bce(d.logits(fake2.detach(), 2), 0.0))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        d.requires_grad_(False)
        for i in range(cfg.g_updates_per_step):
            if i:
                fake1, fake2 = g(z)
            loss = g_loss(fake1, fake2)
            g_opt.zero_grad(set_to_none=True)
            loss.backward()
            g_opt.step()
        d.requires_grad_(True)
        return d_loss.detach()

    step.networks = (g, d)
    return step, {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
