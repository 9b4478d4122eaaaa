"""mlplab's core against scikit-learn's MLPClassifier and PyTorch on the CPU, in one process.

Every workload trains the same network (sizes, nonlinearities, softmax/sigmoid cross-entropy),
on the same float32 data, with the same batch size, optimiser and learning rate, in all three.
Runs are interleaved (mlplab, sklearn, torch, mlplab, …) after one warm-up run each, and the
median of ``--repeats`` runs is reported. Training throughput is samples/s (steps/s for XOR).

    python benchmarks/bench_core.py                 # all workloads
    python benchmarks/bench_core.py --quick         # a few seconds, for a smoke check
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlplab.core import Network, fit, get_optimiser


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]
    batch: int | None  # None: full batch
    optimiser: str
    lr: float
    n_samples: int
    epochs: int
    hidden: str = "relu"

    @property
    def binary(self) -> bool:
        return self.sizes[-1] == 1


WORKLOADS = [
    Workload("784-256-10 sgd b128", (784, 256, 10), 128, "sgd", 0.01, 8192, 1),
    Workload("784-256-10 adam b128", (784, 256, 10), 128, "adam", 1e-3, 8192, 1),
    Workload("784-1024-1024-10 sgd b256", (784, 1024, 1024, 10), 256, "sgd", 0.01, 4096, 1),
    Workload("784-1024-1024-10 adam b256", (784, 1024, 1024, 10), 256, "adam", 1e-3, 4096, 1),
    Workload("xor 2-2-1 full batch", (2, 2, 1), None, "sgd", 1.0, 4, 1000, hidden="sigmoid"),
]


def make_data(w: Workload, seed: int = 0):
    rng = np.random.default_rng(seed)
    if w.binary:
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        return X, np.array([0, 1, 1, 0])
    X = rng.standard_normal((w.n_samples, w.sizes[0]), dtype=np.float32)
    return X, rng.integers(0, w.sizes[-1], w.n_samples)


def run_mlplab(w: Workload, X, y) -> float:
    output, cost = ("sigmoid", "binary_cross_entropy") if w.binary else ("softmax", "categorical_cross_entropy")
    Y = y[:, None].astype(np.float32) if w.binary else np.eye(w.sizes[-1], dtype=np.float32)[y]
    net = Network(w.sizes, [w.hidden, output], cost, init="xavier_uniform", rng=0)
    opt = get_optimiser(w.optimiser, lr=w.lr)
    t = time.perf_counter()
    fit(net, X, Y, optimiser=opt, epochs=w.epochs, batch_size=w.batch, rng=0)
    return time.perf_counter() - t


def run_sklearn(w: Workload, X, y) -> float:
    clf = MLPClassifier(
        hidden_layer_sizes=w.sizes[1:-1], activation="logistic" if w.hidden == "sigmoid" else "relu",
        solver=w.optimiser, alpha=0.0, batch_size=w.batch or len(X), learning_rate_init=w.lr,
        max_iter=w.epochs, shuffle=w.batch is not None, momentum=0.0, nesterovs_momentum=False,
        tol=0.0, n_iter_no_change=10**9, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        clf.fit(X, y)
    return time.perf_counter() - t


def run_torch(w: Workload, X, y) -> float:
    torch.manual_seed(0)
    act = torch.nn.Sigmoid if w.hidden == "sigmoid" else torch.nn.ReLU
    layers = []
    for i, (n_in, n_out) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(w.sizes) - 2:
            layers.append(act())
    model = torch.nn.Sequential(*layers)
    # the logits losses are the fused, stable softmax/sigmoid cross-entropies, as in mlplab
    loss_fn = torch.nn.BCEWithLogitsLoss() if w.binary else torch.nn.CrossEntropyLoss()
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[w.optimiser]
    opt = opt_cls(model.parameters(), lr=w.lr)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y[:, None].astype(np.float32)) if w.binary else torch.from_numpy(y)
    n, batch = len(X), w.batch or len(X)
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(w.epochs):
        order = torch.randperm(n, generator=gen) if batch < n else None
        Xe, ye = (Xt[order], yt[order]) if order is not None else (Xt, yt)
        for start in range(0, n, batch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xe[start : start + batch]), ye[start : start + batch])
            loss.backward()
            opt.step()
    return time.perf_counter() - t


def matmul_bound(w: Workload, X, y) -> float:
    """Seconds that one run's matrix products alone take: 2L − 1 products per step, same shapes."""
    rng = np.random.default_rng(0)
    b = w.batch or w.n_samples
    a = [rng.standard_normal((b, n), dtype=np.float32) for n in w.sizes]
    W = [rng.standard_normal((o, i), dtype=np.float32) for i, o in zip(w.sizes[:-1], w.sizes[1:])]
    dW = [np.empty_like(x) for x in W]
    steps = -(-w.n_samples // b) * w.epochs
    t = time.perf_counter()
    for _ in range(steps):
        for m, Wm in enumerate(W):  # forward: zᵐ = aᵐ⁻¹ Wᵐᵀ
            np.matmul(a[m], Wm.T, out=a[m + 1])
        for m in range(len(W) - 1, -1, -1):  # backward: ∂C/∂Wᵐ = δᵐᵀ aᵐ⁻¹, δᵐ⁻¹ = δᵐ Wᵐ
            np.matmul(a[m + 1].T, a[m], out=dW[m])
            if m:
                np.matmul(a[m + 1], W[m], out=a[m])
    return time.perf_counter() - t


RUNNERS = {"mlplab": run_mlplab, "sklearn": run_sklearn, "torch": run_torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--only", default="", help="run the workloads whose name contains this")
    args = parser.parse_args()
    workloads = [w for w in WORKLOADS if args.only in w.name]
    if args.quick:
        workloads = [Workload(w.name, w.sizes, w.batch, w.optimiser, w.lr, min(w.n_samples, 512), min(w.epochs, 50), w.hidden)
                     for w in workloads]
        args.repeats = 1
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"scikit-learn {__import__('sklearn').__version__}; float32; median of {args.repeats}")
    header = f"{'workload':<28} {'unit':>10} {'mlplab':>10} {'sklearn':>10} {'torch':>10} {'vs sklearn':>10} {'vs torch':>9}"
    print(header)
    for w in workloads:
        X, y = make_data(w)
        for runner in RUNNERS.values():  # warm-up
            runner(w, X, y)
        runners = {**RUNNERS, "bound": matmul_bound} if len(w.sizes) > 3 else RUNNERS
        times = {k: [] for k in runners}
        for _ in range(args.repeats):
            for name, runner in runners.items():
                times[name].append(runner(w, X, y))
        med = {k: statistics.median(v) for k, v in times.items()}
        work = w.epochs if w.batch is None else w.n_samples * w.epochs
        unit = "steps/s" if w.batch is None else "samples/s"
        rate = {k: work / v for k, v in med.items()}
        print(f"{w.name:<28} {unit:>10} {rate['mlplab']:>10.0f} {rate['sklearn']:>10.0f} {rate['torch']:>10.0f} "
              f"{rate['mlplab'] / rate['sklearn']:>9.2f}x {rate['mlplab'] / rate['torch']:>8.2f}x")
        if "bound" in med:
            steps = w.n_samples // w.batch * w.epochs
            print(f"{'':<28} matrix products alone: {med['bound'] / med['mlplab']:.0%} of mlplab's step time "
                  f"({med['bound'] * 1e3 / steps:.2f} ms of {med['mlplab'] * 1e3 / steps:.2f} ms per step; target >= 80%)")


if __name__ == "__main__":
    main()
