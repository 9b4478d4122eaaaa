"""Train an MLP: a DVC stage under `dvc repro`, a whole experiment from the shell.

    python pipelines/train.py optimiser=sgd optimiser.lr=0.1            # one run
    python pipelines/train.py -m nonlinearity=sigmoid,tanh,relu optimiser=sgd,adam
    python pipelines/train.py -m hydra/launcher=joblib data=moons,circles,spirals

From the shell every job prepares, trains and evaluates in its own Hydra output folder; a failing
job is recorded and the sweep goes on, and the exit status says whether any job failed. Run by
DVC (which sets DVC_STAGE), it is the `train` stage alone, configured by params.yaml.
"""

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def job(cfg) -> None:
    from mlplab.sweep import run_job

    run_job(cfg, Path(HydraConfig.get().runtime.output_dir), list(HydraConfig.get().overrides.task))


if __name__ == "__main__":
    if os.environ.get("DVC_STAGE"):
        from mlplab.cli import stage_main
        from mlplab.stages import train

        stage_main(train, "train")
    else:
        job()
        from mlplab.sweep import outcome

        sys.exit(1 if outcome["failed"] else 0)
