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

import numpy as np
from absl import flags

# (numpy-only parts: the IDX loader and the grid writer)
from cogan_tf import cli, data, fileio, images
from cogan_tf.errors import UsageError


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


def define_flags():
    flags.DEFINE_string("data_dir", "data", "Directory holding mnist/ [data]")
    flags.DEFINE_integer("epochs", 3, "Epochs to train [3]")
    flags.DEFINE_integer("seed", 0, "torch.manual_seed [0]")
    flags.DEFINE_integer("batch_size", 512, "Batch size [512, the original's]")
    flags.DEFINE_integer("hidden_size", 128, "Units per hidden layer of G and D [128, as the original]")
    flags.DEFINE_string("out", "torch_vanilla", "Folder of the per-epoch grids [torch_vanilla]")


def main(argv):
    f = flags.FLAGS
    for name in ("epochs", "batch_size", "hidden_size"):
        if getattr(f, name) < 1:
            raise UsageError(f"--{name}={getattr(f, name)}: must be at least 1")
    why = fileio.unwritable_dir(f.out)
    if why:
        raise UsageError(f"--out={f.out}: {why}; give a folder that can be written")
    try:
        import torch
        from torch import nn
    except ImportError:
        raise UsageError("this tool needs PyTorch, which cogan_tf does not depend on: pip install torch") from None
    x, _ = data.load_split(f.data_dir, "mnist", "train")  # uint8 (60000, 28, 28, 1)
    torch.manual_seed(f.seed)
    x = torch.from_numpy(x.reshape(len(x), 784).astype(np.float32) / 255.0) * 2 - 1  # ToTensor + Normalize(0.5, 0.5)
    h = f.hidden_size
    g = mlp([128, h, h, h, 784], nn.Tanh())
    d = mlp([784, h, h, h, 1], nn.Sigmoid(), dropout=0.3)
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-4)
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4)
    bce = nn.BCELoss()
    fixed = torch.randn(64, 128)
    os.makedirs(f.out, exist_ok=True)
    for epoch in range(f.epochs):
        perm = torch.randperm(len(x))
        g_losses, d_losses = [], []
        for start in range(0, len(x), f.batch_size):  # DataLoader(shuffle=True), last batch kept
            real = x[perm[start:start + f.batch_size]]
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
        images.save_grid(os.path.join(f.out, f"img_{epoch}.png"), (samples + 1) / 2)
        print(f"epoch {epoch}: epoch_g_loss: {np.mean(g_losses):.5f}, epoch_d_loss: {np.mean(d_losses):.5f}, "
              f"sample pixel std: {spread:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
