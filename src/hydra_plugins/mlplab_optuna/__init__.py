"""``hydra/sweeper=optuna``: mlplab's Optuna sweeper (see :mod:`.optuna_sweeper`)."""
