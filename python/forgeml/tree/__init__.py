"""scikit-learn-compatible decision trees on forgeml's C++ tree kernels."""
from ._classes import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor"]
