"""DVC stage `prepare`: load, split and standardise the configured data into `paths.prepared`."""

from pathlib import Path

from mlplab.cli import stage_main

if __name__ == "__main__":
    stage_main("prepare", Path(__file__).resolve().parents[1] / "conf")
