"""DVC stage `evaluate`: test metrics, predictions and figures for the trained model."""

from mlplab.cli import stage_main
from mlplab.stages import evaluate

if __name__ == "__main__":
    stage_main(evaluate, "evaluate")
