"""The real conf/: every option of every group composes, validates and builds."""

import subprocess

import numpy as np
import pytest

from mlplab.config import CONF_DIR, ConfigError, compose, optimiser_kwargs, validate
from mlplab.core import get_optimiser
from mlplab.network import build_network
from tests.conftest import PYTHON, REPO, committed_params, config, run

GROUPS = ("architecture", "nonlinearity", "cost", "optimiser", "data", "experiment")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]
#: The options that need more than their group to make sense, with what they need.
NEEDS = {
    ("data", "csv"): ["data.path=x.csv", "data.target=y"],
    ("data", "parquet"): ["data.path=x.parquet", "data.target=y"],
    ("data", "diabetes"): ["cost=squared_error"],
}


def _schema(cfg):
    """A stand-in for prepared data of the right shape, so networks build without loading files."""
    regression = cfg["data"]["name"] == "diabetes"
    return {"name": cfg["data"]["name"], "task": "regression" if regression else "classification",
            "feature_names": ["a", "b", "c"], "classes": None if regression else [0, 1, 2]}


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_validates_and_builds(group, option):
    cfg = config(f"{group}={option}", *NEEDS.get((group, option), []))
    if group == "data" and option not in ("csv", "parquet"):
        from mlplab.data import prepare

        splits, schema = prepare(cfg["data"], cfg["seed"])
        assert len(splits["train"].X) > 0
    else:
        schema = _schema(cfg)
    net = build_network(cfg, schema)
    opt = get_optimiser(cfg["optimiser"]["name"], **optimiser_kwargs(cfg["optimiser"]))
    assert net.layer_sizes[0] == len(schema["feature_names"])
    assert opt.lr == cfg["optimiser"]["lr"]


def test_overrides_reach_the_network():
    cfg = config("architecture.hidden_sizes=[7,5]", "nonlinearity=leaky_relu", "nonlinearity.slope=0.2",
                 "optimiser=sgd", "optimiser.lr=0.01", "dtype=float64")
    net = build_network(cfg, _schema(cfg))
    assert net.layer_sizes == [3, 7, 5, 3]
    assert [s.name for s in net.nonlinearities] == ["leaky_relu", "leaky_relu", "softmax"]
    assert net.nonlinearities[0].slope == 0.2 and net.dtype == np.float64


def test_empty_hidden_list_is_a_linear_model():
    cfg = config("architecture=linear")
    assert build_network(cfg, _schema(cfg)).layer_sizes == [3, 3]


def test_xor_preset_is_the_classic_run():
    cfg = config("experiment=xor")
    net = build_network(cfg, {"name": "xor", "task": "classification", "feature_names": ["x0", "x1"], "classes": [0, 1]})
    assert net.layer_sizes == [2, 2, 1] and net.init == "normal"
    assert [s.name for s in net.nonlinearities] == ["sigmoid", "sigmoid"]
    assert (cfg["optimiser"]["name"], cfg["optimiser"]["lr"], cfg["training"]["epochs"], cfg["training"]["batch_size"]) == ("sgd", 1.0, 1000, None)


BAD = [
    (["optimiser.lr=-0.1"], "optimiser.lr: must be a number > 0, got -0.1"),
    (["optimiser.lr=fast"], "optimiser.lr: must be a number > 0, got 'fast'"),
    (["optimiser.lr=inf"], "optimiser.lr: must be a number > 0, got inf"),
    (["architecture.hidden_sizes=[64,0]"], r"architecture.hidden_sizes: must be a list \(may be empty\) of integer >= 1s, got \[64, 0\]"),
    (["training.epochs=1.5"], "training.epochs: must be an integer >= 1, got 1.5"),
    (["training.batch_size=0"], "training.batch_size: must be an integer >= 1 or null, got 0"),
    (["+optimiser.betas=[0.9,0.99]"], "optimiser.betas: unknown key; valid: beta1, beta2, clip_norm, eps, lr, name, schedule"),
    (["cost.name=hinge"], "cost.name: must be one of auto, binary_cross_entropy, categorical_cross_entropy, squared_error, got 'hinge'"),
    (["nonlinearity.hidden=softmax"], "nonlinearity.hidden: must be one of elu, identity, leaky_relu, relu, sigmoid, softplus, tanh, got 'softmax'"),
    (["nonlinearity=leaky_relu", "nonlinearity.slope=-0.1"], r"nonlinearity.slope: must be a number in \[0, 1\), got -0.1"),
    (["data.test_size=0.6", "data.val_size=0.5"], "data.val_size: test_size \\+ val_size must be < 1, got 0.6 \\+ 0.5"),
    (["data=moons", "data.n_samples=0"], "data.n_samples: must be an integer >= 2, got 0"),
    (["data=csv", "data.path=x.csv", "data.target=y", "data.task=regresion"], "data.task: must be one of classification, regression, got 'regresion'"),
    (["optimiser.schedule.name=warmup"], "optimiser.schedule.name: must be one of constant, cosine, exponential, step, got 'warmup'"),
    (["dtype=float16"], "dtype: must be one of float32, float64, got 'float16'"),
    (["data=csv"], "data.path: is required"),
    # values that used to run silently
    (["optimiser=sgd", "optimiser.schedule.name=step", "+optimiser.schedule.gamma=0"], r"optimiser.schedule.gamma: must be a number in \(0, 1\], got 0"),
    (["optimiser=sgd", "optimiser.schedule.name=exponential", "+optimiser.schedule.gamma=-0.5"], r"optimiser.schedule.gamma: must be a number in \(0, 1\]"),
    (["optimiser=sgd", "optimiser.schedule.name=cosine", "+optimiser.schedule.lr_min=-0.01"], "optimiser.schedule.lr_min: must be a number >= 0, got -0.01"),
    (["optimiser=sgd", "optimiser.lr=0.1", "optimiser.schedule.name=cosine", "+optimiser.schedule.lr_min=0.5"],
     r"optimiser.schedule.lr_min: must be below optimiser.lr \(0.1\), got 0.5"),
    (["seed=4294967296"], r"seed: must be an integer in \[0, 4294967295\], got 4294967296"),
    (["seed=-1"], r"seed: must be an integer in \[0, 4294967295\], got -1"),
    (["architecture.hidden_sizes=[200000,200000]"], r"architecture.hidden_sizes: \[200000, 200000\] needs about .* GiB .* more than"),
    (["training.epochs=${nope}"], "training.epochs: cannot be resolved: Interpolation key 'nope' not found"),
    (["tracking.stale_after_s=0"], "tracking.stale_after_s: must be a number > 0, got 0"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config(*overrides)


def test_constructors_and_validation_share_one_bound():
    from mlplab.core import OPTIMISERS

    with pytest.raises(ValueError, match=r"beta2 must be a number in \[0, 1\), got 1.0"):
        get_optimiser("adam", lr=0.1, beta2=1.0)
    with pytest.raises(ConfigError, match=r"optimiser.beta2: must be a number in \[0, 1\), got 1.0"):
        config("optimiser.beta2=1.0")
    assert OPTIMISERS["adam"].constraints["beta2"] is __import__("mlplab.config", fromlist=["table"]).table(
        config())["optimiser"]["beta2"][0]


def test_sizes_that_do_not_fit_the_data():
    cfg = config("architecture.input_size=10")
    with pytest.raises(ConfigError, match="architecture.input_size: is 10, but data 'digits' .* needs 64"):
        from mlplab.data import prepare

        build_network(cfg, prepare(cfg["data"], 0)[1])
    cfg = config("data=diabetes", "cost=categorical_cross_entropy")
    with pytest.raises(ConfigError, match="cost.name: cost 'categorical_cross_entropy' cannot learn a regression task"):
        build_network(cfg, {"name": "diabetes", "task": "regression", "feature_names": ["a"], "classes": None})


@pytest.mark.parametrize("data, cost, output", [
    (["data=diabetes"], "squared_error", "identity"),
    (["data=digits"], "categorical_cross_entropy", "softmax"),
    (["data=csv", "data.path=t.csv", "data.target=y", "data.task=regression"], "squared_error", "identity"),
    (["data=diabetes", "cost=squared_error", "nonlinearity.output=tanh"], "squared_error", "tanh"),
])
def test_the_cost_and_output_follow_the_task_unless_set(data, cost, output):
    cfg = config(*data)
    assert (cfg["cost"]["name"], cfg["nonlinearity"]["output"]) == (cost, output)


def test_softmax_on_one_output_unit():
    cfg = config("cost=binary_cross_entropy", "nonlinearity.output=softmax")
    with pytest.raises(ConfigError, match="nonlinearity.output: a softmax over one output unit is always 1"):
        build_network(cfg, {"name": "moons", "task": "classification", "feature_names": ["a", "b"], "classes": [0, 1]})


@pytest.mark.slow  # a real process per case
@pytest.mark.parametrize(
    "args, message",
    [
        (["optimiser.lr=-1"], "mlplab: invalid config: optimiser.lr: must be a number > 0, got -1"),
        (["optimiser=lbfgs"], "mlplab: invalid config: optimiser: no option 'lbfgs'; valid: adam, adamw, momentum, "
                              "nesterov, rmsprop, sgd"),
        (["optimiser.lrr=0.1"], "mlplab: invalid config: optimiser.lrr: unknown key; valid: beta1, beta2, clip_norm, "
                                "eps, lr, name, schedule, weight_decay"),
        (["optimiser=sgd", "optimiser.momentum=0.9"], "mlplab: invalid config: optimiser.momentum: unknown key; valid: "
                                                      "clip_norm, lr, name, schedule, weight_decay"),
        (["training.epochs=${nope}"], "mlplab: invalid config: training.epochs: cannot be resolved: Interpolation key "
                                      "'nope' not found"),
        (["-m", "optimiser.lr=interval(0.1,1)"], "mlplab: invalid config: optimiser.lr: interval(0.1,1) is a search "
                                                 "space, which the grid sweeper cannot run"),
        (["tracking.uri=file:///tmp/mlruns"], "mlplab: error: tracking.uri: 'file:///tmp/mlruns' is a file store"),
    ],
    ids=["value", "option", "key", "key-of-the-chosen-option", "interpolation", "sweep-syntax", "store"],
)
def test_the_command_line_says_one_line_and_exits_2(args, message, tmp_path):
    mode = [a for a in args if a == "-m"]
    res = run([PYTHON, str(REPO / "pipelines/train.py"), *mode, "experiment=smoke", f"hydra.run.dir={tmp_path}/run",
               f"hydra.sweep.dir={tmp_path}/sweep", *(a for a in args if a != "-m")], tmp_path,
              env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/never.db"})
    assert (res.returncode, res.stderr.strip().splitlines()[0]) == (2, res.stderr.strip()), res.stderr
    assert res.stderr.startswith(message)
    assert not (tmp_path / "never.db").exists()  # refused before the store was touched


def test_dvc_stage_reports_a_bad_params_file_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(committed_params().replace("lr: 0.001", "lr: -0.001"))
    res = run([PYTHON, str(REPO / "pipelines/train.py"), "--params"], tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == "mlplab train: invalid config: optimiser.lr: must be a number > 0, got -0.001"
    assert not (tmp_path / "mlflow.db").exists()


def test_help_is_quick_and_imports_no_heavy_library():
    code = ("import sys, runpy; sys.argv = ['train.py', '--help']\n"
            "try:\n    runpy.run_path('pipelines/train.py', run_name='__main__')\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('mlflow', 'sklearn', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    res = run([PYTHON, "-c", code], REPO)
    assert res.returncode == 0, res.stderr
    assert "Powered by Hydra" in res.stdout
    assert "training.patience        epochs without a better validation loss" in res.stdout  # what keys mean


def test_params_yaml_is_the_default_composition():
    import yaml

    committed = yaml.safe_load(committed_params())
    assert committed == compose(), "the committed params.yaml drifted from conf/: run `python -m mlplab.params`"
    assert subprocess.run(["git", "diff", "--quiet", "--", "params.yaml"], cwd=REPO).returncode in (0, 1)
