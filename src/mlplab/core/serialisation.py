"""Save and load a network as one ``.npz``: the weights plus the architecture as JSON.

The file holds ``W1, b1, …, WL, bL`` and ``architecture`` (a JSON string stored as a NumPy
unicode scalar), so it loads with ``allow_pickle=False``. Other entries may travel beside them
(``save(..., **extra)``; the pipeline's model adds its preprocessing) and :func:`load` skips them. Arrays are stored in the network's
dtype, so a loaded network predicts bit for bit what the saved one did.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from mlplab.core.network import Network

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupted or does not match its architecture."""


def save(network: Network, path: str | Path, **extra: np.ndarray) -> Path:
    """Write ``network`` (and the ``extra`` arrays) to ``path`` (``.npz`` is appended if missing);
    return the path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arch = {"format_version": FORMAT_VERSION, **network.architecture()}
    arrays = {}
    for m, (W, b) in enumerate(network.weights, start=1):
        arrays[f"W{m}"], arrays[f"b{m}"] = W, b
    savez(path, architecture=np.array(json.dumps(arch)), **arrays, **extra)
    return path


def savez(path: str | Path, **arrays: np.ndarray) -> None:
    """Like ``numpy.savez``, but byte-for-byte reproducible: fixed entry timestamps and order.

    ``numpy.savez`` stamps each entry with the current time, so saving the same arrays twice
    gives different files, and DVC would see a changed output.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[name]), allow_pickle=False)


def read(path: str | Path) -> dict[str, np.ndarray]:
    """Every entry of a file written by :func:`save`; raise :class:`ModelFileError` if it is unreadable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable mlplab model file ({exc})") from None


def load(path: str | Path) -> Network:
    """Read a network written by :func:`save`; raise :class:`ModelFileError` if it is unusable."""
    return network_from(read(path), path)


def network_from(entries: dict[str, np.ndarray], path: str | Path) -> Network:
    """The network in a model file's ``entries`` (other entries are not its business)."""
    contents = {k: v for k, v in entries.items() if k == "architecture" or re.fullmatch(r"[Wb]\d+", k)}
    try:
        arch = json.loads(str(contents.pop("architecture")))
        version = arch.pop("format_version")
    except (KeyError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelFileError(f"{path}: missing or invalid architecture record ({exc})") from None
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format_version {version} is not {FORMAT_VERSION}")
    try:
        network = Network(
            arch["layer_sizes"], arch["nonlinearities"], arch["cost"],
            init=arch["init"], dtype=arch["dtype"], rng=0,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid architecture record ({exc})") from None
    expected = {f"{k}{m}" for m in range(1, network.n_layers + 1) for k in "Wb"}
    if set(contents) != expected:
        raise ModelFileError(
            f"{path}: arrays {sorted(contents)} do not match the architecture's {sorted(expected)}"
        )
    weights = []
    for m in range(1, network.n_layers + 1):
        W, b = contents[f"W{m}"], contents[f"b{m}"]
        if W.dtype != network.dtype or b.dtype != network.dtype:
            raise ModelFileError(f"{path}: layer {m} is stored as {W.dtype}, not {network.dtype}")
        weights.append((W, b))
    try:
        network.weights = weights
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return network
