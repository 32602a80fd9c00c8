"""The CoGAN paper's pair score (cogan_tf/evaluate/image_metrics.py) on constructed pairs with hand-counted
answers, its place in the report and in the exports, and the command line's refusals of its flags. (The curve
over checkpoints: test_curve.py.)"""

import os

import numpy as np
import pytest

from cogan_tf import pairs
from cogan_tf.errors import DataError
from cogan_tf.evaluate import image_metrics as ps
from tests.conftest import error_lines, run_cli, without_tensorflow

PIXELS = 28 * 28


def block(row=10, col=10, size=4, value=1.0):
    """One image (1, 28, 28, 1): a size x size square of ``value`` on black."""
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, row:row + size, col:col + size] = value
    return x


def digits(n=40, seed=0):
    """Digit-like images in [0, 1]: a few random strokes, grey at their rims."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), np.float32)
    for i in range(n):
        for _ in range(3):
            r, c = rng.integers(4, 20, 2)
            x[i, r:r + rng.integers(3, 9), c:c + 3] = 1.0
            x[i, r - 1, c:c + 3] = np.maximum(x[i, r - 1, c:c + 3], 0.4)
    return x


def score(pair, top, bot, threshold=ps.DEFAULT_THRESHOLD):
    sums = ps.PairScoreSums(pair, threshold)
    sums.add(top, bot)
    return sums.value()


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_a_perfect_pair_scores_one(pair):
    top = digits()
    v = score(pair, top, pairs.transform(pair, top))
    assert v["pixel_agreement"] == 1.0 and v["mean_abs_difference"] == 0.0
    assert v["ink"]["top"] == pytest.approx(np.mean(top > 0.5))
    assert v["blank"] == {"top": 0.0, "bot": 0.0, "both": 0.0} and v["warning"] is None
    assert v["pair"] == pair and v["threshold"] == 0.5


# A 4x4 square moved 3 columns: the squares differ on 2 x 4 x 3 = 24 pixels; their edge rings (20 pixels
# each, the 6x6 around the square less the square) share 6 pixels, so they differ on 20 + 20 - 2 x 6 = 28.
SHIFTED = {"negative": 24, "rotate": 24, "edge": 28}


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_a_shifted_pair_scores_less_by_the_pixels_counted_by_hand(pair):
    v = score(pair, block(), pairs.transform(pair, block(col=13)))
    assert v["pixel_agreement"] == pytest.approx(1 - SHIFTED[pair] / PIXELS)
    top = digits()
    assert score(pair, top, pairs.transform(pair, np.roll(top, 3, axis=2)))["pixel_agreement"] < 0.99


# The same two squares 3 columns apart, pixel by pixel: inked in one only (each way), and inked in one with no ink
# of the other within one pixel. Squares: columns 10-12 of the first only (12), 14-16 of the second (12); of those,
# columns 10-11 and 15-16 have nothing within a pixel (8 + 8). Rings: 20 - 6 shared = 14 each way; 10 each way have
# nothing within a pixel (2 + 2 on the top and bottom rows, 4 on the far side, 2 in the middle of the near side).
ONLY = {"negative": 12, "rotate": 12, "edge": 14}
BEYOND_1PX = {"negative": 16, "rotate": 16, "edge": 20}


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_where_the_pixels_disagree_is_counted_by_hand(pair):
    v = score(pair, block(), pairs.transform(pair, block(col=13)))
    assert v["inked_in_one_only"] == pytest.approx({"transform": ONLY[pair] / PIXELS, "bot": ONLY[pair] / PIXELS})
    assert v["agreement_within_1px"] == pytest.approx(1 - BEYOND_1PX[pair] / PIXELS)
    # One pixel off: every disagreement is within a pixel; a perfect pair has none.
    assert score(pair, block(), pairs.transform(pair, block(col=11)))["agreement_within_1px"] == 1.0
    top = digits()
    v = score(pair, top, pairs.transform(pair, top))
    assert v["agreement_within_1px"] == 1.0 and v["inked_in_one_only"] == {"transform": 0.0, "bot": 0.0}
    # Ink missing from G2 altogether is counted on the transform's side only.
    v = score(pair, top, pairs.transform(pair, np.zeros_like(top)))
    assert v["inked_in_one_only"]["bot"] == 0.0 and v["inked_in_one_only"]["transform"] == pytest.approx(
        1 - v["pixel_agreement"])


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_two_blank_domains_are_flagged(pair):
    blank = np.zeros((40, 28, 28, 1), np.float32)
    v = score(pair, blank, pairs.transform(pair, blank))  # black digits, and white negatives
    assert v["pixel_agreement"] == 1.0  # what agreement alone would reward
    assert v["ink"] == {"top": 0.0, "bot": 0.0} and v["blank"] == {"top": 1.0, "bot": 1.0, "both": 1.0}
    assert "both domains blank in 100% of the pairs" in v["warning"]
    # A few blank pairs among good ones are named in the numbers but do not set the warning.
    mixed = np.concatenate([digits(36), blank[:4]])
    v = score(pair, mixed, pairs.transform(pair, mixed))
    assert v["blank"]["both"] == pytest.approx(0.1) and v["warning"] is None
    # One blank domain beside a good one: not flagged as both blank, and it does not agree.
    v = score(pair, digits(), pairs.transform(pair, blank[:40]))
    assert v["blank"] == {"top": 0.0, "bot": 1.0, "both": 0.0} and v["pixel_agreement"] < 0.95


@pytest.mark.parametrize("pair", pairs.PAIRS)
def test_unpaired_real_images_give_the_agreement_without_coupling(pair):
    same = np.repeat(block(), 20, axis=0)
    assert ps.real_pair_scores(pair, same)["unpaired_agreement"] == 1.0  # nothing to tell apart
    # Each image against its own pair one pixel to the right: the squares differ on 2 x 4 pixels, the rings
    # (20 pixels each) on 2 x 20 - 2 x 10 shared.
    assert ps.real_pair_scores(pair, same)["shifted_1px_agreement"] == pytest.approx(
        1 - {"negative": 8, "rotate": 8, "edge": 20}[pair] / PIXELS)
    x = digits(200, seed=5)
    real = ps.real_pair_scores(pair, (x * 255).astype(np.uint8))
    assert 0.5 < real["unpaired_agreement"] < 0.97  # mostly background in both, but not coupled
    assert real["ink"]["top"] == pytest.approx(np.mean(x > 0.5), abs=1e-6)


def test_the_threshold_decides_grey_pixels():
    grey = block(value=0.3)  # its negative is 0.7 on the square
    white = np.ones_like(grey)
    assert score("negative", grey, white)["pixel_agreement"] == 1.0
    assert score("negative", grey, white, threshold=0.8)["pixel_agreement"] == pytest.approx(1 - 16 / PIXELS)


def test_batches_add_up_to_the_whole():
    top = digits(50, seed=3)
    bot = pairs.transform("edge", np.roll(top, 1, axis=1))
    whole = score("edge", top, bot)
    sums = ps.PairScoreSums("edge")
    for s in (slice(0, 17), slice(17, 50)):
        sums.add(top[s], bot[s])
    from cogan_tf.evaluate.reports import flatten

    assert flatten(sums.value()) == pytest.approx(flatten(whole))


def test_bad_settings_are_refused():
    for t in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            ps.PairScoreSums("edge", t)
    with pytest.raises(DataError, match="unknown pair 'blur'"):
        ps.PairScoreSums("blur")
    with pytest.raises(ValueError, match="shapes"):
        score("edge", digits(2), digits(3))


# --- the report and the export ----------------------------------------------------------------------------

@pytest.fixture
def env(edge_pair_env):
    """The classifier and a CoGAN run of two steps on the edge pair, a checkpoint after each (conftest)."""
    return edge_pair_env


def test_report_of_an_edge_pair_scores_the_second_domain_against_real_edges(env):
    from cogan_tf.evaluate import image_metrics, reports, samples as sampling, scoring

    real = env["ref"].test_images[:200].astype(np.float32) / 255
    perfect = sampling.in_memory("cogan", {"top": real, "bot": pairs.transform("edge", real)}, "perfect", pair="edge")
    report = scoring.evaluate_samples(perfect, env["clf"], env["ref"])
    assert report["pair"] == "edge" and report["pairs"]["pixel_agreement"] == 1.0
    assert report["domains"]["bot"]["scored_as"] == scoring.BOT_SCORED_AS["edge"]
    # The edges are classified as they are, against the edges of the real test digits.
    probs, _ = env["clf"].predict(pairs.transform("edge", real))
    assert report["domains"]["bot"]["classifier_score"] == pytest.approx(image_metrics.classifier_score(probs))
    assert report["real_bot"]["classifier_score"] == pytest.approx(
        image_metrics.classifier_score(env["clf"].predict(pairs.transform("edge", env["ref"].test_images))[0]))
    assert report["pairs"]["real"]["ink"]["bot"] == pytest.approx(
        np.mean(pairs.transform("edge", env["ref"].test_images / 255.0) > 0.5))
    text = reports.format_report(report)
    assert "edge(G1(z)) vs G2(z)" in text and "real edges" in text and "WARNING" not in text
    blank = np.zeros_like(real)
    report = scoring.evaluate_samples(sampling.in_memory("cogan", {"top": blank, "bot": blank}, "blank", pair="edge"),
                                 env["clf"], env["ref"])
    assert report["pairs"]["pixel_agreement"] == 1.0 and "WARNING: both domains blank" in reports.format_report(report)


def test_the_export_records_its_pair_and_the_report_uses_it(env):
    from cogan_tf.evaluate import samples as sampling, scoring

    loaded = sampling.load_saved_model(env["export"])
    assert loaded.pair.numpy().decode() == "edge"
    report = scoring.report_for_saved_model(env["export"], env["data_dir"], n=64, clf=env["clf"], log=lambda s: None)
    assert report["pair"] == "edge" and report["pairs"]["pair"] == "edge"
    out = sampling.generate(loaded, n=64)
    assert report["pairs"]["pixel_agreement"] == pytest.approx(
        ps.pair_agreement("edge", out.images["top"], out.images["bot"]))


def test_cli_refuses_the_new_flags_in_one_line_before_tensorflow(tmp_path):
    env = without_tensorflow(tmp_path)
    cases = [
        (("--saved_model", "x", "--pair", "edge"),
         "error: --pair=edge goes with --grids or --grid_dirs; a --saved_model or --checkpoint_dir records the "
         "pair it was trained on"),
        (("--grid_dirs", "runs/a/samples", "--pair", "edge"),
         "error: --pair=edge: andrewliao11's published grids, the default REFERENCE_SAMPLES, are of the negatives; "
         "give --grid_dirs RUN_SAMPLES REFERENCE_SAMPLES of two edge runs"),
        (("--saved_model", "x", "--agreement_threshold", "1"),
         "error: --agreement_threshold=1.0: give a value between 0 and 1 (exclusive)"),
        (("--saved_model", "x", "--agreement_threshold", "nan"),
         "error: --agreement_threshold=nan: give a value between 0 and 1 (exclusive)"),
        (("--compare", "a.json", "b.json", "--agreement_threshold", "0.4"),
         "error: --agreement_threshold goes with --saved_model, --checkpoint_dir, --grids or --grid_dirs"),
    ]
    for args, line in cases:
        r = run_cli(*args, env=env)
        assert r.returncode == 2 and error_lines(r) == [line], (args, r.stderr[-1500:])
    r = run_cli("--grids", "a.png", "b.png", "--pair", "blur", env=env)
    assert r.returncode != 0 and "--pair=blur: value should be one of <negative|edge|rotate>" in r.stderr


def test_a_recorded_pair_outside_the_list_is_refused():
    from cogan_tf import config as C

    assert C.value_problem("pair", str, "blur") == "one of negative, edge, rotate"
    assert C.value_problem("pair", str, "edge") is None


def test_fashion_mnist_pairs_are_written_and_verified(tmp_path):
    from cogan_tf import data
    from tests.conftest import write_fake_dataset

    data_dir = write_fake_dataset(tmp_path / "data", "fashion_mnist", n_train=20, n_test=10)
    for pair in pairs.PAIRS:
        pairs.write_pair(data_dir, "fashion_mnist", pair, log=lambda s: None)
        xs = [data.load_split(data_dir, "fashion_mnist", s)[0] for s in ("train", "test")]
        second = pairs.load_pair(data_dir, "fashion_mnist", pair, originals=xs)
        np.testing.assert_array_equal(second, pairs.transform(pair, np.concatenate(xs)))
    assert sorted(os.listdir(os.path.join(data_dir, "fashion_mnist"))) == sorted(
        list(data.IDX_FILES) + ["edge", "invert", "rotate"])


