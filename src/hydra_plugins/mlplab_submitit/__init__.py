"""``hydra/launcher=submitit_slurm`` and ``submitit_local``: the official submitit launcher, waiting
for every job of a sweep (see :mod:`.submitit_launcher`)."""
