"""Optuna search from the shell (``hydra/sweeper=optuna``): real processes, a real journal or SQLite
storage, a real MLflow store."""

import subprocess

import optuna
import pytest
from mlflow import MlflowClient

from mlplab.search import JOURNAL, distribution
from tests.conftest import PYTHON, REPO, run
from tests.tracking.conftest import runs

pytestmark = pytest.mark.slow
TRAIN = str(REPO / "pipelines/train.py")
#: Half the learning rates learn nothing in 8 epochs: once 5 trials are done, the median pruner
#: stops such a trial early (the sampler is seeded by the config's seed, so this is fixed).
PRUNABLE = ["experiment=smoke", "training.epochs=8", "optimiser=sgd", "optimiser.lr=choice(1e-7,0.5)",
            "nonlinearity.hidden=choice(relu,tanh)", "hydra/sweeper=optuna", "hydra.sweeper.pruner=median",
            "hydra/sweeper/sampler=random"]


def search(tmp_path, *extra, name="s", folder="sweep"):
    return [PYTHON, TRAIN, "-m", *PRUNABLE, f"hydra.sweeper.study_name={name}",
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}", f"hydra.sweep.dir={tmp_path / folder}", *extra]


def study(tmp_path, name="s"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def children(store):
    table = runs(store)
    return table[table["tags.mlflow.parentRunId"].notna()] if "tags.mlflow.parentRunId" in table else table.iloc[:0]


def test_a_study_prunes_resumes_and_tells_its_story(store, tmp_path):
    res = run(search(tmp_path, "hydra.sweeper.n_trials=8"), REPO)
    assert res.returncode == 0, res.stderr
    s = study(tmp_path)
    states = [t.state for t in s.trials]
    assert len(states) == 8 and optuna.trial.TrialState.PRUNED in states, states
    # a pruned trial is a finished MLflow run, tagged with the epoch it stopped at
    kids = children(store)
    assert len(kids) == 8 and set(kids.status) == {"FINISHED"}
    pruned = [t for t in s.trials if t.state == optuna.trial.TrialState.PRUNED]
    tagged = kids["tags.mlplab.pruned_at_epoch"].dropna().astype(int).tolist()
    assert sorted(tagged) == sorted(max(t.intermediate_values) for t in pruned)
    assert all(e < 8 for e in tagged)
    # the parent: counts, best, the trials table and Optuna's plots; the summary says the same
    client = MlflowClient(store)
    parent = runs(store).query("`tags.mlplab.search.study` == 's'").iloc[0]
    assert parent["metrics.search/complete"] + parent["metrics.search/pruned"] == 8
    assert parent["metrics.search/best/test/accuracy"] == s.best_value
    artefacts = {a.path for a in client.list_artifacts(parent.run_id, "search")}
    assert {"search/trials.csv", "search/summary.txt", "search/history.png", "search/parallel_coordinates.png"} <= artefacts
    assert f"study 's': 8 trials" in res.stdout and f"best test/accuracy {s.best_value:.4g}" in res.stdout
    # the same command with the same study name continues the study
    again = run(search(tmp_path, "hydra.sweeper.n_trials=3", folder="again"), REPO)
    assert again.returncode == 0, again.stderr
    assert len(study(tmp_path).trials) == 11 and "study 's': 11 trials" in again.stdout


def test_two_workers_share_one_study(store, tmp_path):
    """Started at the same moment on a new study: both create-or-load it, and the trials add up."""
    procs = [subprocess.Popen(search(tmp_path, "hydra.sweeper.n_trials=3", name="w", folder=f"w{i}"), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    trials = study(tmp_path, "w").trials
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))  # none evaluated twice
    assert len(children(store)) == 6  # every trial one MLflow child run


def test_a_failing_trial_is_failed_and_the_search_goes_on(store, tmp_path):
    res = run([PYTHON, TRAIN, "-m", "experiment=smoke", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4",
               "hydra.sweeper.study_name=f", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               "optimiser=sgd", "optimiser.lr=choice(0.1,1e30)", "training.stats_every=1",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"], REPO)
    assert res.returncode == 1  # a failed job fails the command, as in every sweep
    trials = study(tmp_path, "f").trials
    assert len(trials) == 4
    for t in trials:  # the diverging rate fails, in Optuna and in MLflow; the other completes
        expected = optuna.trial.TrialState.FAIL if float(t.params["optimiser.lr"]) > 1 else optuna.trial.TrialState.COMPLETE
        assert t.state == expected, (t.params, t.state)
    kids = children(store)
    assert sorted(kids.status) == sorted("FAILED" if float(t.params["optimiser.lr"]) > 1 else "FINISHED" for t in trials)
    assert {float(t.params["optimiser.lr"]) for t in trials} == {0.1, 1e30}  # both ran: the search went on


def test_the_default_storage_is_a_journal_file_in_the_project(tmp_path):
    from mlplab.search import open_study, storage

    open_study("d", storage(None, tmp_path), "maximize").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert (tmp_path / JOURNAL).is_file()
    assert len(optuna.load_study(study_name="d", storage=storage(None, tmp_path)).trials) == 2


def test_the_search_space_reads_as_the_official_plugin_reads_it():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parse = OverridesParser.create().parse_override
    lr = distribution(parse("optimiser.lr=tag(log, interval(1e-4, 1e-1))"))
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)
    sizes = distribution(parse("architecture.hidden_sizes=choice([32],[64],[64,64])"))
    assert sizes.choices == ("[32]", "[64]", "[64,64]")
    epochs = distribution(parse("training.epochs=range(10,50,10)"))
    assert (epochs.low, epochs.high, epochs.step) == (10, 50, 10)


def test_ctrl_c_closes_the_parent_the_running_trial_and_its_run(store, tmp_path):
    import os
    import signal

    from tests.conftest import ctrl_c_works
    from tests.tracking.test_faults import training, wait_for

    cmd = search(tmp_path, "hydra.sweeper.n_trials=50", "data.n_samples=2000", "training.epochs=100000",
                 "tracking.flush_every_s=0.2", name="c")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=ctrl_c_works)
    wait_for(training(store), "a trial training", proc, timeout=180)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.strip().splitlines()[-1]) == (130, "mlplab: interrupted (Ctrl-C)")
    assert "RUNNING" not in set(runs(store).status)  # the parent and the trial's run: KILLED
    states = {t.state for t in study(tmp_path, "c").trials}
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.FAIL in states


@pytest.mark.parametrize("bad, line", [
    ("data=digits", "mlplab: invalid config: data.n_samples: unknown key; valid: name, standardise, test_size, val_size"),
    ("hydra.sweeper.pruner=foo", "mlplab: invalid config: hydra.sweeper.pruner: must be one of none, median, hyperband, got 'foo'"),
    ("hydra.sweeper.storage=bogus", "mlplab: invalid config: hydra.sweeper.storage: cannot use bogus (ArgumentError: "),
])
def test_a_config_error_of_every_trial_is_one_line_before_the_study(store, tmp_path, bad, line):
    res = run(search(tmp_path, bad, name="bad"), REPO)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith(line), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stdout
    with pytest.raises(KeyError):  # no study was created, no trial run
        study(tmp_path, "bad")
