"""forgeml.svm: support vector machines with scikit-learn's API on forgeml's kernels."""
from ._linear import LinearSVC
from ._svc import SVC

__all__ = ["SVC", "LinearSVC"]
