"""DVC stage `prepare`: load, split and standardise the configured data into `paths.prepared`."""

from mlplab.cli import stage_main
from mlplab.stages import prepare

if __name__ == "__main__":
    stage_main(prepare, "prepare")
