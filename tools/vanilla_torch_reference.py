"""The vanilla GAN as JasonFengGit's PyTorch code trains it (docs/ORIGINAL.md §2), written out in PyTorch
from that description, to tell the port's behaviour from the original's. Not part of the package: it needs
PyTorch (`pip install torch`), which cogan_tf does not depend on.

    python tools/vanilla_torch_reference.py --data_dir data --epochs 3 --seed 0 --out /tmp/torch_vanilla

`--hidden_size` (default 128) is the width of G's and D's hidden layers: the original runs 128 (its
`1024 if self.device == 'cuda' else 128` compares a torch.device with a string, never equal), as does
`main.py --model vanilla`; 1024 is the width its README describes (`main.py --hidden_size 1024`).

Prints the per-epoch mean G and D losses (the numbers the port's `losses.json` holds) and the mean per-pixel
standard deviation of 64 fixed-noise samples (near 0: collapsed to one pattern), and writes an 8x8 grid per epoch.
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# (numpy-only parts: the IDX loader and the grid writer)
from cogan_tf import cli, data, fileio, images  # noqa: E402
from cogan_tf.errors import UsageError  # noqa: E402


def mlp(sizes, last, dropout=None):
    from torch import nn

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
            if dropout:
                layers.append(nn.Dropout(dropout))
    layers.append(last)
    return nn.Sequential(*layers)


def main(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", default="data", help="directory holding mnist/ [data]")
    p.add_argument("--epochs", type=int, default=3, help="[3]")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed [0]")
    p.add_argument("--batch_size", type=int, default=512, help="[512, the original's]")
    p.add_argument("--hidden_size", type=int, default=128, help="units per hidden layer [128, as the original]")
    p.add_argument("--out", default="torch_vanilla", help="folder of the per-epoch grids [torch_vanilla]")
    a = p.parse_args(argv)
    for name in ("epochs", "batch_size", "hidden_size"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name}={getattr(a, name)}: must be at least 1")
    why = fileio.unwritable_dir(a.out)
    if why:
        raise UsageError(f"--out={a.out}: {why}; give a folder that can be written")
    try:
        import torch
        from torch import nn
    except ImportError:
        raise UsageError("this tool needs PyTorch, which cogan_tf does not depend on: pip install torch") from None
    x, _ = data.load_split(a.data_dir, "mnist", "train")  # uint8 (60000, 28, 28, 1)
    torch.manual_seed(a.seed)
    x = torch.from_numpy(x.reshape(len(x), 784).astype(np.float32) / 255.0) * 2 - 1  # ToTensor + Normalize(0.5, 0.5)
    h = a.hidden_size
    g = mlp([128, h, h, h, 784], nn.Tanh())
    d = mlp([784, h, h, h, 1], nn.Sigmoid(), dropout=0.3)
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-4)
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4)
    bce = nn.BCELoss()
    fixed = torch.randn(64, 128)
    os.makedirs(a.out, exist_ok=True)
    for epoch in range(a.epochs):
        perm = torch.randperm(len(x))
        g_losses, d_losses = [], []
        for start in range(0, len(x), a.batch_size):  # DataLoader(shuffle=True), last batch kept
            real = x[perm[start:start + a.batch_size]]
            n = len(real)
            d_opt.zero_grad()
            fake = g(torch.randn(n, 128))
            d_loss = bce(d(real), torch.ones(n, 1)) + bce(d(fake.detach()), torch.zeros(n, 1))
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            g_loss = bce(d(g(torch.randn(n, 128))), torch.ones(n, 1))
            g_loss.backward()
            g_opt.step()
            g_losses.append(g_loss.item())
            d_losses.append(d_loss.item())
        with torch.no_grad():
            samples = g(fixed).numpy().reshape(64, 28, 28, 1)
        spread = float(samples.std(axis=0).mean())
        images.save_grid(os.path.join(a.out, f"img_{epoch}.png"), (samples + 1) / 2)
        print(f"epoch {epoch}: epoch_g_loss: {np.mean(g_losses):.5f}, epoch_d_loss: {np.mean(d_losses):.5f}, "
              f"sample pixel std: {spread:.4f}", flush=True)


if __name__ == "__main__":
    cli.run_tool(main)
