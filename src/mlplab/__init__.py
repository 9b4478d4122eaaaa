"""mlplab: declarative experiments with multi-layer perceptrons on a plain-NumPy core."""

__version__ = "0.1.0"
