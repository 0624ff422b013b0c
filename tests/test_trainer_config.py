import pytest

from gradmod.training import ConfigError, TrainConfig
from gradmod.training.recipes import DEFAULT_RECIPE, RECIPES, resolve_recipe


def test_defaults_round_trip_through_dict():
    config = TrainConfig()
    data = config.to_dict()
    assert data["optimizer"]["betas"] == [0.9, 0.999]
    assert TrainConfig.from_dict(data) == config


def test_from_dict_reads_nested_sections():
    config = TrainConfig.from_dict(
        {
            "seed": 3,
            "model": {"name": "vit", "options": {"depth": 2}},
            "optimizer": {"name": "adamw", "lr": 1, "betas": [0.8, 0.99]},
            "modulation": {"policy": "hypergradient", "options": {"beta": 0.05}},
        }
    )
    assert config.seed == 3
    assert config.model.options == {"depth": 2}
    assert config.optimizer.lr == 1.0
    assert isinstance(config.optimizer.lr, float)
    assert config.optimizer.betas == (0.8, 0.99)
    assert config.modulation.options == {"beta": 0.05}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"optimiser": {}}, r"unknown key 'optimiser'; did you mean 'optimizer'\?"),
        ({"optimizer": {"weight_decy": 0.1}}, r"unknown key 'optimizer.weight_decy'; did you mean 'weight_decay'\?"),
        ({"run": {"eval_evry": 5}}, r"unknown key 'run.eval_evry'; did you mean 'eval_every'\?"),
        ({"optimizer": {"learning_rate": 0.1}}, r"unknown key 'optimizer.learning_rate' \(valid keys in \[optimizer\]: name, lr"),
    ],
)
def test_unknown_key_names_nearest(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"optimizer": {"lr": "fast"}}, r"optimizer.lr: expected a number, got 'fast' \(str\)"),
        ({"epochs": 2.5}, r"epochs: expected an integer, got 2.5 \(float\)"),
        ({"epochs": True}, r"epochs: expected an integer, got True \(bool\)"),
        ({"run": {"quiet": "yes"}}, r"run.quiet: expected true or false, got 'yes'"),
        ({"optimizer": {"betas": [0.9]}}, r"optimizer.betas: expected a list of 2 numbers, got \[0.9\]"),
        ({"model": "cnn"}, r"model: expected a table \(dict\), got 'cnn'"),
        ({"model": {"options": 3}}, r"model.options: expected a table \(dict\), got 3"),
    ],
)
def test_wrong_type_names_key_and_value(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"optimizer": {"lr": -0.1}}, r"optimizer.lr must be > 0.0, got -0.1"),
        ({"optimizer": {"momentum": 1.0}}, r"optimizer.momentum must be < 1.0, got 1.0"),
        ({"target_accuracy": 90}, r"target_accuracy must be <= 1.0, got 90.0"),
        ({"schedule": {"min_lr_ratio": -0.5}}, r"schedule.min_lr_ratio must be >= 0.0, got -0.5"),
        ({"data": {"batch_size": 0}}, "data.batch_size must be >= 1, got 0"),
        ({"modulation": {"apply": "weights"}}, r"modulation.apply = 'weights' is not valid.*choose one of update, gradient"),
        ({"adversarial": {"method": "pgd2"}}, r"adversarial.method = 'pgd2' is not valid; did you mean 'pgd'\?"),
    ],
)
def test_out_of_range_names_key_and_value(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"name": "vitt"}}, r"model.name = 'vitt' is not valid; did you mean 'vit'\?"),
        ({"optimizer": {"name": "adam"}}, r"optimizer.name = 'adam' is not valid; did you mean 'adamw'\?"),
        ({"modulation": {"policy": "hypergradent"}}, r"did you mean 'hypergradient'\?"),
    ],
)
def test_unknown_names_suggest_nearest(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="run.checkpoint_every = 10 needs run.out"):
        TrainConfig.from_dict({"run": {"checkpoint_every": 10}})
    with pytest.raises(ConfigError, match="method 'fgsm_rs' takes one step"):
        TrainConfig.from_dict({"adversarial": {"method": "fgsm_rs", "steps": 3}})
    with pytest.raises(ConfigError, match="device = 'gpu' is not a torch device"):
        TrainConfig.from_dict({"device": "gpu"})


def test_validate_catches_values_set_in_code():
    config = TrainConfig()
    config.optimizer.lr = -1.0
    with pytest.raises(ConfigError, match="optimizer.lr must be > 0.0"):
        config.validate()


def test_replace_changes_dotted_keys_and_validates():
    config = TrainConfig().replace(**{"optimizer.lr": 0.2, "seed": 4})
    assert config.optimizer.lr == 0.2
    assert config.seed == 4
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        config.replace(seed=-1)


def test_recipe_fills_only_unset_keys():
    resolved = resolve_recipe(TrainConfig.from_dict({"model": {"name": "vit"}, "epochs": 2}))
    recipe = RECIPES["vit"]
    assert resolved.epochs == 2
    assert resolved.optimizer.name == recipe.optimizer
    assert resolved.optimizer.lr == recipe.lr
    assert resolved.optimizer.weight_decay == recipe.weight_decay
    assert resolved.data.batch_size == recipe.batch_size
    assert resolved.data.augment == recipe.augment
    assert resolved.schedule.warmup_steps == recipe.warmup_steps


def test_recipe_differs_per_model():
    cnn = resolve_recipe(TrainConfig.from_dict({"model": {"name": "cnn"}}))
    vit = resolve_recipe(TrainConfig.from_dict({"model": {"name": "vit"}}))
    assert (cnn.optimizer.name, vit.optimizer.name) == ("sgd", "adamw")
    assert cnn.optimizer.lr != vit.optimizer.lr


def test_other_optimizer_does_not_inherit_recipe_lr():
    resolved = resolve_recipe(TrainConfig.from_dict({"model": {"name": "cnn"}, "optimizer": {"name": "adamw"}}))
    assert resolved.optimizer.lr != RECIPES["cnn"].lr
    assert resolved.optimizer.nesterov is False


def test_model_without_recipe_gets_default():
    config = TrainConfig()
    config.model.name = "custom"  # set in code, past the registry check
    assert resolve_recipe(config).optimizer.name == DEFAULT_RECIPE.optimizer
