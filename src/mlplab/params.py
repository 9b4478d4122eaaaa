"""Write ``params.yaml``: the Hydra composition of ``conf/`` that DVC's stages read.

    python -m mlplab.params            # after editing conf/, before committing

``dvc exp run`` recomposes it by itself; ``dvc repro`` reads the committed file, and a test
fails when that file no longer equals the default composition.
"""

from __future__ import annotations

from mlplab.config import CONF_DIR, PARAMS_FILE, compose


def main() -> None:
    from omegaconf import OmegaConf

    target = CONF_DIR.parent / PARAMS_FILE
    target.write_text(OmegaConf.to_yaml(OmegaConf.create(compose(conf_dir=CONF_DIR))))  # DVC's own format
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
