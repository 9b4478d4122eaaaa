"""Train an MLP: a DVC stage under `dvc repro`, a whole experiment from the shell.

    python pipelines/train.py optimiser=sgd optimiser.lr=0.1            # one run
    python pipelines/train.py -m nonlinearity=sigmoid,tanh,relu optimiser=sgd,adam
    python pipelines/train.py -m hydra/launcher=joblib data=moons,circles,spirals

From the shell every job prepares, trains and evaluates in its own Hydra output folder; a failing
job is recorded and the sweep goes on, and the exit status says whether any job failed (2 for a
single run whose config or data is bad). Run by DVC (which sets DVC_STAGE), it is the `train`
stage alone, configured by params.yaml.
"""

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def job(cfg) -> None:
    from hydra.types import RunMode

    from mlplab.sweep import run_job

    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    run_job(cfg, Path(hc.runtime.output_dir), list(hc.overrides.task), sweep_dir)


if __name__ == "__main__":
    from mlplab.cli import interrupt_on_sigterm, stage_main

    interrupt_on_sigterm()
    if os.environ.get("DVC_STAGE"):
        from mlplab.runs import dvc_train

        stage_main(dvc_train, "train")
    else:
        from mlplab import sweep

        try:
            job()
        except BaseException:
            sweep.abort_open_sweep()
            raise
        sys.exit(sweep.outcome["exit"])
