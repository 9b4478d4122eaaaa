"""Train an MLP: the whole experiment from the shell, or DVC's `train` stage.

    python pipelines/train.py optimiser=sgd optimiser.lr=0.1            # one run
    python pipelines/train.py -m nonlinearity=sigmoid,tanh,relu optimiser=sgd,adam
    python pipelines/train.py -m hydra/launcher=joblib data=moons,circles,spirals
    python pipelines/train.py --params                                   # DVC's train stage

From the shell every job prepares, trains and evaluates in its own Hydra output folder; a failing
job is recorded and the sweep goes on, and the exit status says whether any job failed (2 for a
bad config or data). With ``--params`` it is DVC's `train` stage alone, configured by the
params.yaml that DVC composed.
"""

import sys
from pathlib import Path

import hydra

CONF = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def job(cfg):
    from mlplab.sweep import job as run_job

    return run_job(cfg)


if __name__ == "__main__":
    from mlplab.cli import hydra_main, stage_main

    if sys.argv[1:] == ["--params"]:
        stage_main("train", CONF)
    else:
        hydra_main(job)
