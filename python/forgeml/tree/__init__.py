"""scikit-learn-compatible decision trees on forgeml's C++ tree kernels."""
from ._classes import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor
from ._export import export_graphviz, export_text, plot_tree

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
           "export_graphviz", "export_text", "plot_tree"]
