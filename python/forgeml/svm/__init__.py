"""forgeml.svm: support vector machines with scikit-learn's API on forgeml's kernels."""
from ._linear import LinearSVC
from ._linear_svr import LinearSVR
from ._nusvc import NuSVC
from ._svc import SVC
from ._svr import SVR, NuSVR, OneClassSVM

__all__ = ["SVC", "LinearSVC", "SVR", "NuSVR", "OneClassSVM", "NuSVC", "LinearSVR"]
