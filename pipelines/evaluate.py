"""DVC stage `evaluate`: test metrics, predictions and figures for the trained model."""

from mlplab.cli import interrupt_on_sigterm, stage_main
from mlplab.runs import dvc_evaluate

if __name__ == "__main__":
    interrupt_on_sigterm()
    stage_main(dvc_evaluate, "evaluate")
