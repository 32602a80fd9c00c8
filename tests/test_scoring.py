"""cogan_tf/evaluate/scoring.py, the evaluation's report: samples scored with the classifier against the real test
images - a CoGAN's pair agreement (1 for exact inverses, 0 for a pair that is not inverted), each domain's
classifier score, Frechet distance and histogram, a ClusterGAN encoder's clustering (ACC, NMI, ARI, K-means on the
features its export names) - for a SavedModel or a checkpoint's generator alike; the same numbers in batches as
in one, in memory that does not grow with the samples; the JSON written beside the table."""

import json

import pytest
import tensorflow as tf

from cogan_tf import runner
from cogan_tf.evaluate import reports, samples as sampling, scoring
from tests.conftest import assert_same_report, quiet
from tests.fake_generators import FakeClusterGan, FakeCogan, FakeVanilla, save_module


@pytest.fixture
def env(evaluation_env):
    """The classifier and the CoGAN run's checkpoint and export that the evaluation is tested on (conftest)."""
    return evaluation_env


def test_perfect_and_non_inverse_cogan_pairs(tmp_path, env):
    perfect = sampling.generate(tf.saved_model.load(save_module(FakeCogan(), str(tmp_path / "p"))), n=300, seed=1)
    report = scoring.evaluate_samples(perfect, env["clf"], env["ref"])
    assert report["pairs"]["pixel_agreement"] == 1.0
    assert report["pairs"]["mean_abs_difference"] == 0.0
    assert report["pairs"]["label_agreement"] == 1.0
    top = report["domains"]["top"]
    assert top == {k: v for k, v in report["domains"]["bot"].items() if k != "scored_as"}
    assert sum(top["histogram"]) == pytest.approx(1.0)
    assert top["effective_classes"] > 9.3  # argmax of 10 normal draws: near-uniform digits
    assert top["classifier_score"] > 5

    wrong = sampling.generate(tf.saved_model.load(save_module(FakeCogan(inverse=False), str(tmp_path / "w"))), n=100)
    report = scoring.evaluate_samples(wrong, env["clf"], env["ref"])
    assert report["pairs"]["pixel_agreement"] == 0.0
    assert report["pairs"]["mean_abs_difference"] == 1.0


def test_cogan_saved_model_report_and_json(tmp_path, env):
    out = str(tmp_path / "r" / "report.json")
    lines = []
    report = scoring.report_for_saved_model(env["export"], env["data_dir"], n=130, seed=2, out=out, clf=env["clf"],
                                       log=lines.append)
    assert report["model"] == "cogan" and report["n"] == 130 and report["seed"] == 2
    for key in ("pixel_agreement", "mean_abs_difference", "label_agreement", "agreement_within_1px"):
        assert 0.0 <= report["pairs"][key] <= 1.0
    p = report["pairs"]
    assert p["agreement_within_1px"] >= p["pixel_agreement"]
    assert sum(p["inked_in_one_only"].values()) == pytest.approx(1 - p["pixel_agreement"])
    assert 0.0 < p["real"]["shifted_1px_agreement"] < 1.0
    for d in ("top", "bot"):
        m = report["domains"][d]
        assert 1.0 <= m["classifier_score"] <= 10.0 + 1e-6 and m["frechet_distance"] >= 0
        assert len(m["histogram"]) == 10
    assert report["real"]["frechet_distance_n"] == 130
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(report))
    table = "\n".join(lines)
    for text in ("pixel agreement", "label agreement", "classifier score", "Frechet distance", "class 9 (%)",
                 "agreement within 1 pixel", "inked in one image only", "real pairs 1 pixel apart"):
        assert text in table
    # Same seed, same z, same report.
    again = scoring.report_for_saved_model(env["export"], env["data_dir"], n=130, seed=2, clf=env["clf"], log=quiet)
    assert again["pairs"] == report["pairs"]


def test_vanilla_and_clustergan_reports(tmp_path, env):
    ref = env["ref"]
    van = sampling.generate(tf.saved_model.load(save_module(FakeVanilla(), str(tmp_path / "v"))), n=200)
    report = scoring.evaluate_samples(van, env["clf"], ref)
    assert set(report["domains"]) == {"images"} and "pairs" not in report
    assert report["domains"]["images"]["effective_classes"] > 9

    cg = sampling.generate(tf.saved_model.load(save_module(FakeClusterGan(), str(tmp_path / "c"), True)), n=200)
    assert cg.z_c.shape == (200,) and cg.encode is not None
    report = scoring.evaluate_samples(cg, env["clf"], ref)
    assert set(report["domains"]) == {"images"}
    # The encoder's clusters are the labels under a permutation: ACC, NMI and ARI of 1 after matching.
    c = report["clustering"]
    assert c["n"] == 300 and c["acc"] == pytest.approx(1.0) and c["nmi"] == pytest.approx(1.0)
    assert c["ari"] == pytest.approx(1.0)
    # The paper's protocol, K-means on [z_n, class_probs], finds the same ten groups.
    assert c["kmeans_purity"] == pytest.approx(1.0) and c["kmeans_nmi"] == pytest.approx(1.0)
    assert c["kmeans_ari"] == pytest.approx(1.0) and c["purity"] == pytest.approx(1.0)
    # z_c picks the template, which the classifier reads back: codes match digits one to one.
    assert report["latent_code_vs_classifier"]["acc"] > 0.95
    assert "clustering of the test set by the encoder" in reports.format_report(report)


class NoisyZnClusterGan(FakeClusterGan):
    """FakeClusterGan whose z_n is loud noise: what E's z_n is when it was trained without a z_n loss."""

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
    def encode(self, images):
        scores = tf.reshape(images, [-1, 784]) @ self.w
        z_n = 100.0 * tf.random.stateless_normal([tf.shape(images)[0], 30], seed=[1, 2])
        return {"z_n": z_n, "class_probs": tf.nn.softmax(10.0 * scores)}


def test_clustergan_export_says_whether_kmeans_takes_z_n(tmp_path, env):
    """An export of a model trained without a z_n loss (beta_n 0) is clustered on its softmax alone, as the
    run's own report does; exports without the flag (all earlier ones) on [z_n, softmax]."""
    clustering = {}
    for name, flag in (("without", None), ("softmax", False), ("both", True)):
        module = NoisyZnClusterGan()
        if flag is not None:
            module.kmeans_on_zn = tf.Variable(flag, trainable=False)
        loaded = tf.saved_model.load(save_module(module, str(tmp_path / name), True))
        samples = sampling.generate(loaded, n=100)
        assert samples.kmeans_on_zn is (flag is not False)
        full = scoring.evaluate_samples(samples, env["clf"], env["ref"])
        clustering[name] = full["clustering"]
        if name == "softmax":
            assert "K-means on [softmax]" in reports.format_report(full)
    assert clustering["softmax"]["kmeans_features"] == "softmax"
    assert clustering["softmax"]["kmeans_purity"] == pytest.approx(1.0)
    for name in ("without", "both"):  # the noise in z_n spoils K-means on [z_n, softmax]
        assert clustering[name]["kmeans_features"] == "z_n, softmax" and clustering[name]["kmeans_purity"] < 0.9
        assert clustering[name]["acc"] == pytest.approx(1.0)  # the argmax protocol does not use z_n


def test_checkpoint_report_uses_the_stored_config(env):
    lines = []
    gan = runner.gan_from_checkpoint(env["checkpoint"], env["data_dir"], log=lines.append)
    assert gan.name == "cogan" and gan.train_cfg.batch_size == 8 and gan.seed == 3
    assert any("Load SUCCESS" in line for line in lines)
    report = scoring.report_for_gan(gan, env["data_dir"], n=64, clf=env["clf"], log=quiet)
    assert report["model"] == "cogan" and report["source"].endswith("mnist_8_28")
    # The same generator exported by training gives the same numbers for the same z.
    direct = scoring.report_for_saved_model(env["export"], env["data_dir"], n=64, clf=env["clf"], log=quiet)
    assert reports.flatten(direct["pairs"]) == pytest.approx(reports.flatten(report["pairs"]))


def test_scoring_in_batches_gives_the_numbers_of_one_batch(env):
    s = sampling.generate(sampling.load_saved_model(env["export"]), n=300, seed=5)  # a real (untrained) generator's pairs
    # More samples than features: the covariances (one domain: each matrix root costs seconds here); and a
    # grid's few pairs: agreement, labels and the Frechet distance of few samples.
    for model, arrays in (("vanilla", {"images": s.images["top"]}),
                          ("cogan", {k: v[:64] for k, v in s.images.items()})):
        one, many = (scoring.evaluate_samples(sampling.in_memory(model, arrays, "x", batch_size=b), env["clf"],
                                              env["ref"], real=False) for b in (300, 37))  # batches of 33 or 34, and of 32
        assert_same_report(one, many)


def test_the_memory_of_a_report_does_not_grow_with_the_samples(tmp_path, env):
    import tracemalloc

    path = save_module(FakeCogan(), str(tmp_path / "p"))

    def peak(n):
        tracemalloc.start()
        try:
            scoring.report_for_saved_model(path, env["data_dir"], n=n, clf=env["clf"], log=quiet)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(100)  # traces the classifier's and the generator's functions
    small, large = peak(1000), peak(2000)  # batches of 500 both: only their number differs
    # 1,000 more pairs are 2 x 1,000 x 784 float32 = 6.3 MB of images alone; read batch by batch, none of it stays.
    assert large < small + 2 * 2 ** 20, (small, large)
