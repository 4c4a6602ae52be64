"""scikit-learn-compatible random forests and extremely randomized trees on forgeml's C++ tree kernels."""
from ._forest import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from ..tree._format import ForestFileError, load

__all__ = ["load", "ForestFileError", "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"]
