"""DVC stage `evaluate`: test metrics, predictions and figures for the trained model."""

from pathlib import Path

from mlplab.cli import stage_main

if __name__ == "__main__":
    stage_main("evaluate", Path(__file__).resolve().parents[1] / "conf")
