"""scikit-learn-compatible random forests on forgeml's C++ tree kernels."""
from ._forest import RandomForestClassifier, RandomForestRegressor

__all__ = ["RandomForestClassifier", "RandomForestRegressor"]
