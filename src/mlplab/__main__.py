"""``python -m mlplab``: what mlplab does from the shell besides training (for that, see
``python pipelines/train.py --help`` and ``dvc repro``).

    python -m mlplab predict models/model.npz rows.csv -o predictions.csv
    python -m mlplab predict models:/digits@champion rows.parquet --probabilities
    python -m mlplab server start --port 5000       # make server: MLflow on PostgreSQL
    python -m mlplab server stop --port 5000        # make server-stop
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlplab.cli import fail

PROG = "python -m mlplab"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, exit status 2 (argparse would print the usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 65535, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="mlplab: experiments with multi-layer perceptrons.",
                                epilog="Train, sweep and search: python pipelines/train.py --help. "
                                       "The pipeline: dvc repro. Compare runs: make ui.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = sub.add_parser(
        "predict", help="predict from raw rows with a trained model",
        description="Predict from raw rows (shaped like the training data; a target column is ignored) with a "
                    "trained model, which applies the preprocessing fitted on its training split. Classification "
                    "gives the labels as in the data, regression values in the target's units.")
    predict.add_argument("model", help="a model file (models/model.npz, an MLflow run's weights/*.npz) or an MLflow "
                                       "model URI (runs:/<run id>/model, models:/<model id>, models:/<name>@<alias>) "
                                       "in the store of MLFLOW_TRACKING_URI, else the project's mlflow.db")
    predict.add_argument("input", type=Path, help="the rows: a CSV or Parquet (.parquet) file")
    predict.add_argument("-o", "--output", type=Path,
                         help="where to write the predictions (.csv or .parquet); default: standard output as CSV")
    predict.add_argument("--probabilities", action="store_true",
                         help="add one column per class, named after its label (classification only)")
    server = sub.add_parser(
        "server", help="start or stop the project's MLflow tracking server on PostgreSQL",
        description="An MLflow tracking server on 127.0.0.1 with the runs in PostgreSQL and proxied artefacts, "
                    "its data in the project's server/ folder. start returns once it answers and prints the "
                    "MLFLOW_TRACKING_URI to use; stop stops it (and PostgreSQL with the project's last server).")
    server.add_argument("action", choices=("start", "stop"))
    server.add_argument("--port", type=_port, default=5000, help="the server's port (default: 5000)")
    server.add_argument("--artifacts", help="where the server stores artefacts: a folder or s3://bucket/prefix "
                                            "(default: server/artifacts)")
    server.add_argument("--workers", type=int, help="the server's worker processes (default: MLflow's)")
    return p


def load(spec: str):
    """The model a file name or an MLflow model URI names."""
    from mlplab.model import Model

    if "://" not in spec and ":/" not in spec:
        return Model.load(spec)
    from mlplab.tracking.mlflow import download_model

    return Model.load(download_model(spec, project()))


def project() -> Path:
    """The project whose store an MLflow URI is looked up in (without ``MLFLOW_TRACKING_URI``): the
    one the current folder is in, as for training, else the one this package belongs to."""
    from mlplab.config import CONF, CONF_DIR

    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / CONF / "config.yaml").is_file()), CONF_DIR.parent)


def predict(args: argparse.Namespace) -> None:
    from mlplab.data import DataError, read_rows

    model = load(args.model)
    rows = read_rows(args.input)
    if rows.empty:
        raise DataError(f"{args.input}: no rows to predict")
    notes: list[str] = []
    table = rows[[]].assign(prediction=model.predict(rows, notes))
    if args.probabilities:
        table = table.join(model.predict_proba(rows))
    for note in notes:
        print(f"mlplab predict: note: {note}", file=sys.stderr)
    if args.output is None:
        table.to_csv(sys.stdout, index=False)
    elif args.output.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(args.output, index=False)
    else:
        table.to_csv(args.output, index=False)
    if args.output is not None:
        print(f"mlplab predict: {len(table)} predictions in {args.output}", file=sys.stderr)


def server(args: argparse.Namespace) -> None:
    from mlplab.server import Server

    where = Server(project(), args.port)
    if args.action == "start":
        print(f"mlplab server: {where.start(args.artifacts, args.workers)}")
        print(f"export MLFLOW_TRACKING_URI={where.uri}")
    else:
        for line in where.stop():
            print(f"mlplab server: {line}")


def main(argv: list[str] | None = None) -> None:
    from mlplab.cli import user_errors

    args = parser().parse_args(argv)
    try:
        {"predict": predict, "server": server}[args.command](args)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        sys.stdout = open(os.devnull, "w")
    except (*user_errors(), KeyboardInterrupt) as exc:
        fail(f"mlplab {args.command}", exc)


if __name__ == "__main__":
    main()
