"""mlplab's backpropagation core: plain NumPy, nothing else.

>>> import numpy as np
>>> from mlplab.core import Network, fit, get_optimiser
>>> net = Network([2, 2, 1], ["sigmoid", "sigmoid"], "binary_cross_entropy", init="normal", rng=0)
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]); Y = np.array([[0], [1], [1], [0]])
>>> history = fit(net, X, Y, optimiser=get_optimiser("sgd", lr=1.0), epochs=1000, rng=0)
"""

from mlplab.core.costs import COSTS, Cost, get_cost
from mlplab.core.events import Callback, EpochEvent, History, LayerStats, StepEvent
from mlplab.core.gradcheck import gradcheck
from mlplab.core.initialisers import INITIALISERS, get_initialiser
from mlplab.core.network import Network
from mlplab.core.nonlinearities import NONLINEARITIES, Nonlinearity, get_nonlinearity
from mlplab.core.optimisers import OPTIMISERS, Optimiser, get_optimiser
from mlplab.core.schedules import SCHEDULES, get_schedule
from mlplab.core.serialisation import ModelFileError, load, save
from mlplab.core.training import FIT_CONSTRAINTS, DivergenceError, fit

__all__ = [
    "COSTS", "FIT_CONSTRAINTS", "INITIALISERS", "NONLINEARITIES", "OPTIMISERS", "SCHEDULES",
    "Callback", "Cost", "DivergenceError", "EpochEvent", "History", "LayerStats",
    "ModelFileError", "Network", "Nonlinearity", "Optimiser", "StepEvent",
    "fit", "get_cost", "get_initialiser", "get_nonlinearity", "get_optimiser",
    "get_schedule", "gradcheck", "load", "save",
]
