"""Write ``params.yaml``: the Hydra composition of ``conf/`` that DVC's stages read.

    python -m mlplab.params            # after editing conf/, before committing

``dvc exp run`` recomposes it by itself; ``dvc repro`` reads the committed file, and a test
fails when that file no longer equals the default composition.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"
PARAMS = REPO / "params.yaml"


def compose(overrides: list[str] = (), conf_dir: Path = CONF_DIR) -> dict:
    """The composed config as a plain dict, without the ``hydra`` node (as DVC writes it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def main() -> None:
    from omegaconf import OmegaConf

    PARAMS.write_text(OmegaConf.to_yaml(OmegaConf.create(compose())))  # DVC's own format
    print(f"wrote {PARAMS}")


if __name__ == "__main__":
    main()
