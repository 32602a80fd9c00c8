"""Configs: each model's defaults, the recipes, and the one flag <-> field table."""

import dataclasses
from typing import Optional

import pytest

from cogan_tf import config as C


def test_train_config_starts_from_each_originals_defaults():
    assert C.TrainConfig() == C.train_config("cogan")  # TrainConfig's own defaults are the CoGAN's
    v = C.train_config("vanilla")
    assert (v.model, v.dataset, v.batch_size, v.epoch, v.learning_rate, v.beta1, v.beta2) == (
        "vanilla", "mnist", 512, 500, 2e-4, 0.9, 0.999)
    c = C.train_config("clustergan")
    assert (c.dataset, c.batch_size, c.epoch, c.learning_rate, c.beta1, c.beta2) == (
        "fashion_mnist", 100, 200, 1e-4, 0.5, 0.9)
    p = C.train_config("clustergan", "paper")
    assert (p.dataset, p.val_size, p.batch_size, p.epoch, p.learning_rate) == ("mnist", 5000, 64, 2911, 1e-4)
    assert C.train_config("vanilla", batch_size=8, seed=3).batch_size == 8  # fields given win
    with pytest.raises(ValueError, match="unknown model"):
        C.defaults_for("gan")


def test_model_config_of_each_model_and_recipe():
    assert C.model_config("cogan") == C.CoganConfig()
    assert C.model_config("vanilla", hidden=1024).hidden == 1024
    paper = C.model_config("clustergan", "paper", zn_sigma=0.2)
    assert (paper.recipe, paper.critic, paper.zn_sigma, paper.init_std) == ("paper", "wgan_gp", 0.2, 0.02)
    assert C.model_config("clustergan") == C.ClusterGanConfig()
    with pytest.raises(ValueError, match="only the ClusterGAN"):
        C.model_config("vanilla", "paper")


def test_one_flag_field_table():
    for model, table in C.FLAG_FIELDS.items():
        fields = {f.name for f in dataclasses.fields(C.MODEL_CONFIGS[model])}
        for flag, set_fields in table.items():
            assert set(set_fields) <= fields, (model, flag)
    # Derived: a field's own flag wins over the flags that set several fields.
    assert C.FIELD_FLAGS["cogan"]["loss_on_logits"] == "--loss_on_logits"
    assert C.FIELD_FLAGS["cogan"]["bn_batch_stats_at_inference"] == "--bn_moving_average"
    assert C.FIELD_FLAGS["cogan"]["sync_batchnorm"] == "--sync_batchnorm"
    assert C.FIELD_FLAGS["clustergan"]["zn_sigma"] == "--zn_sigma"
    assert C.FIELD_FLAGS["clustergan"]["critic"] == "--recipe"
    assert C.FIELD_FLAGS["vanilla"] == {"hidden": "--hidden_size"}


def test_recorded_values_are_checked_by_their_fields_annotation():
    # A field added to a config class is covered: its type is read from the class.
    @dataclasses.dataclass(frozen=True)
    class Grown(C.ClusterGanConfig):
        n_heads: int = 4
        tau: Optional[float] = None

    types = C.field_types(Grown)
    assert set(types) == {f.name for f in dataclasses.fields(Grown)}
    assert C.value_problem("n_heads", types["n_heads"], 2) is None
    assert C.value_problem("n_heads", types["n_heads"], True) == "an integer >= 0"  # a bool is not an int
    assert C.value_problem("n_heads", types["n_heads"], 2.0) == "an integer >= 0"
    assert C.value_problem("tau", types["tau"], None) is None
    assert C.value_problem("tau", types["tau"], 1) is None  # an int is a fine float
    assert C.value_problem("tau", types["tau"], float("nan")) == "a finite number or null"
    assert C.value_problem("recipe", types["recipe"], "paper") is None
    assert C.value_problem("recipe", types["recipe"], "mine") == "one of original, paper, conditional"
    assert C.value_problem("critic", types["critic"], 3) == "a string"
