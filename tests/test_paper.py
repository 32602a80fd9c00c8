"""The CoGAN's --recipe paper / conditional: the recipe's defaults and main.py's flags for it, every new flag's
refusals. (Its network, layers and training: tests/test_paper_networks.py, test_paper_layers.py,
test_cogan_paper.py.)"""

import pytest

from cogan_tf import config as C
from tests.conftest import run_main_refusal

PAPER = C.cogan_config("paper")


# --- recipe defaults and flags ----------------------------------------------------------------------------------

def test_recipe_defaults():
    t = C.train_config("cogan", "paper")
    assert (t.disjoint_domains, t.max_steps, t.batch_size, t.learning_rate, t.beta1, t.beta2) == (
        True, 25000, 128, 2e-4, 0.5, 0.999)
    assert C.train_config("cogan").disjoint_domains is False
    assert (PAPER.g_shared_layers, PAPER.d_shared_layers, PAPER.real_target, PAPER.fake_target) == (4, 3, 1.0, 0.0)


MAIN_CONFIGS = r"""
from cogan_tf.scripts import main
main.define_flags()
for argv in (["--recipe", "paper", "--g_shared_layers", "2", "--d_shared_layers", "0"],
             ["--recipe", "conditional", "--disjoint_domains=False", "--max_steps", "500", "--paper_init", "pytorch"],
             []):
    main.FLAGS.unparse_flags()
    main.FLAGS(["main.py"] + argv)
    main.validate(main.FLAGS)
    m, t = main.build_configs(main.FLAGS)
    print(m.recipe, m.g_shared_layers, m.d_shared_layers, m.paper_init, m.real_target, t.disjoint_domains, t.max_steps,
          t.epoch)
"""


def test_main_resolves_the_recipe_and_sharing_flags():
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-c", MAIN_CONFIGS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "paper 2 0 caffe 1.0 True 25000 1000",  # the paper's halves and length unless told otherwise
        "conditional 4 3 pytorch 1.0 False 500 1000",
        "original 4 3 caffe 0.9 False None 25",  # the original's defaults unchanged
    ]


@pytest.mark.parametrize("args, message", [
    (["--recipe", "paper", "--g_shared_layers", "5"],
     "error: --g_shared_layers=5: must be 0 to 4 (the layer next to the image stays per domain)"),
    (["--recipe", "paper", "--d_shared_layers", "4"],
     "error: --d_shared_layers=4: must be 0 to 3 (the layer next to the image stays per domain)"),
    (["--recipe", "paper", "--d_shared_layers=-1"],
     "error: --d_shared_layers=-1: must be 0 to 3 (the layer next to the image stays per domain)"),
    (["--g_shared_layers", "2"], "error: --g_shared_layers=2: only for --model cogan --recipe paper"),
    (["--recipe", "conditional", "--d_shared_layers", "1"],
     "error: --d_shared_layers=1: only for --model cogan --recipe paper (the conditional GAN shares everything)"),
    (["--model", "vanilla", "--recipe", "paper"], "error: --recipe=paper: not a recipe of --model vanilla; "
     "cogan: original, paper, conditional; clustergan: original, paper"),
    (["--model", "clustergan", "--recipe", "conditional"], "error: --recipe=conditional: not a recipe of --model "
     "clustergan; cogan: original, paper, conditional; clustergan: original, paper"),
    (["--recipe", "paper", "--corrected"], "error: --corrected=True: only for the original CoGAN network, not --recipe paper"),
    (["--recipe", "conditional", "--loss_on_logits", "False"],
     "error: --loss_on_logits=False: only for the original CoGAN network, not --recipe conditional"),
    (["--recipe", "paper", "--mixed_precision"],
     "error: --mixed_precision=True: not for --recipe paper, whose layers compute in float32"),
    (["--recipe", "paper", "--strategy", "mirrored"], "error: --strategy=mirrored: --recipe paper trains on one device: "
     "drop --strategy"),
    (["--paper_init", "pytorch"], "error: --paper_init=pytorch: only for --model cogan --recipe paper or conditional"),
])
def test_new_flags_refused_in_one_line_before_tensorflow(tmp_path, args, message):
    r = run_main_refusal(tmp_path, args, message)
    assert "tensorflow" not in r.stderr.lower()


