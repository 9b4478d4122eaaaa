"""DVC stage `prepare`: load, split and standardise the configured data into `paths.prepared`."""

from mlplab.cli import interrupt_on_sigterm, stage_main
from mlplab.runs import dvc_prepare

if __name__ == "__main__":
    interrupt_on_sigterm()
    stage_main(dvc_prepare, "prepare")
