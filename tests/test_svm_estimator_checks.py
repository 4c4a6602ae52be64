"""scikit-learn's estimator checks on forgeml.svm's estimators."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from forgeml.svm import SVC, LinearSVC

# The same two checks scikit-learn marks as expected failures for its own SVC and LinearSVC:
# gamma='scale' is computed from X.var() over rows, so repeating rows changes gamma; and the
# solvers' stopping rules scale with the number of rows, so repeated rows and integer weights
# stop at slightly different points (both agree within tol, not to rtol=1e-7).
_SAMPLE_WEIGHT = "sample_weight is not equivalent to removing/repeating samples (as in scikit-learn)"
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT,
    "check_sample_weight_equivalence_on_sparse_data": _SAMPLE_WEIGHT,
}


@parametrize_with_checks([SVC(), LinearSVC()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)
