"""RandomForestClassifier and RandomForestRegressor (scikit-learn's API and defaults).

The data is binned once per forest; the trees grow in C++, in parallel (one thread per tree),
each seeded from random_state, so the model is the same whatever n_jobs is. Bootstrap draws are
per-row counts multiplied into the sample weights (X is never copied)."""
from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import ops
from ..tree import DecisionTreeClassifier, DecisionTreeRegressor
from ..tree import _fit
from ..tree._classes import BaseDecisionTree, TreeClassifierMixin

__all__ = ["RandomForestClassifier", "RandomForestRegressor"]


class BaseForest(BaseEstimator):
    _parameter_constraints: dict = {
        **BaseDecisionTree._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "oob_score": ["boolean", callable],
        "n_jobs": [Integral, None],
        "max_samples": [None, Interval(RealNotInt, 0.0, 1.0, closed="right"), Interval(Integral, 1, None, closed="left")],
    }
    _tree_class = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_forest")

    def _n_draws(self, n: int) -> int:
        if self.max_samples is None:
            return n
        if isinstance(self.max_samples, Integral):
            if self.max_samples > n:
                raise ValueError(f"max_samples: expected at most n_samples={n}, got {self.max_samples}")
            return int(self.max_samples)
        return max(1, int(round(n * self.max_samples)))

    def _fit(self, X, y, sample_weight, classify: bool):
        X, y = _fit.check_X_y(self, X, y, classify)
        if not self.bootstrap and self.max_samples is not None:
            raise ValueError("`max_sample` cannot be set if `bootstrap=False`. Either switch to "
                             "`bootstrap=True` or set `max_sample=None`.")
        if self.oob_score and not self.bootstrap:
            raise ValueError("Out of bag estimation only available if bootstrap=True")
        n = X.shape[0]
        if classify:
            y_enc = _fit.encode_classes(self, y)
            cw = self.class_weight
            if cw == "balanced_subsample" and not self.bootstrap:
                cw = "balanced"
            weight = _fit.sample_weights(X, y, sample_weight, cw)
        else:
            self.n_outputs_ = 1
            y_enc = np.ascontiguousarray(y, dtype=np.float64)
            weight = _fit.sample_weights(X, y, sample_weight, None)
        if not weight.any():
            raise ValueError("sample_weight: the total weight is zero; at least one sample needs a positive weight")
        n_draws = self._n_draws(n)
        self._seeds = _fit.seeds_for(self.random_state, self.n_estimators)
        self.max_features_ = _fit.resolve_max_features(self.max_features, X.shape[1])
        self._forest = _fit.grow(
            self, X, y_enc, weight, criterion=self.criterion, n_classes=self.n_classes_ if classify else 1,
            seeds=self._seeds, max_features=self.max_features_, bootstrap=self.bootstrap, n_draws=n_draws,
            balanced_subsample=classify and self.class_weight == "balanced_subsample" and self.bootstrap,
            threads=_fit.threads_for(self.n_jobs))
        self._n_draws_ = n_draws
        if self.oob_score:
            self._set_oob_score(X, y, y_enc, n_draws, classify)
        return self

    def _set_oob_score(self, X, y, y_enc, n_draws, classify):
        n = X.shape[0]
        k = self._forest.value.shape[1]
        total = np.zeros((n, k))
        seen = np.zeros(n, dtype=np.int64)
        threads = _fit.threads_for(self.n_jobs)
        for t, seed in enumerate(self._seeds):  # tree order: the sums do not depend on threads
            rows = np.flatnonzero(ops.tree_bootstrap_counts(n, n_draws, int(seed)) == 0)
            if len(rows):
                total[rows] += self._forest.predict(X[rows], threads=threads, trees=[t])
                seen[rows] += 1
        if (seen == 0).any():
            warnings.warn("Some inputs do not have OOB scores. This probably means too few trees were used "
                          "to compute any reliable OOB estimates.", UserWarning)
        pred = total / np.maximum(seen, 1)[:, None]
        scorer = self.oob_score if callable(self.oob_score) else None
        if classify:
            self.oob_decision_function_ = pred
            y_pred = self.classes_[np.argmax(pred, axis=1)]
            self.oob_score_ = (scorer or accuracy_score)(y, y_pred)
        else:
            self.oob_prediction_ = pred[:, 0]
            self.oob_score_ = (scorer or r2_score)(y, self.oob_prediction_)

    def _raw_predict(self, X):
        check_is_fitted(self)
        X = _fit.check_X(self, X, reset=False)
        return self._forest.predict(X, threads=_fit.threads_for(self.n_jobs))

    def apply(self, X):
        """Leaf index per sample and tree, (n_samples, n_estimators)."""
        check_is_fitted(self)
        X = _fit.check_X(self, X, reset=False)
        return self._forest.apply(X, threads=_fit.threads_for(self.n_jobs))

    @property
    def feature_importances_(self):
        check_is_fitted(self)
        per_tree = self._forest.importances()
        used = np.diff(self._forest.offsets) > 1
        if not used.any():
            return np.zeros(self.n_features_in_)
        imp = per_tree[used].mean(axis=0)
        return imp / imp.sum()

    def _tree_params(self):
        names = self._tree_class().get_params().keys()
        return {k: v for k, v in self.get_params().items() if k in names}

    @property
    def estimator_(self):
        return self._tree_class(**{**self._tree_params(), "random_state": None})

    @property
    def estimators_(self):
        """The fitted trees as scikit-learn-style estimators (built from the forest on access)."""
        check_is_fitted(self)
        params = self._tree_params()
        out = []
        for t, seed in enumerate(self._seeds):
            est = self._tree_class(**{**params, "random_state": int(seed)})
            est._forest = _one_tree(self._forest, t)
            est.tree_ = self._forest.tree(t)
            est.n_features_in_ = self.n_features_in_
            est.n_outputs_ = 1
            est.max_features_ = self.max_features_
            if hasattr(self, "classes_"):
                est.classes_, est.n_classes_ = self.classes_, self.n_classes_
            out.append(est)
        return out

    def __len__(self):
        return self.n_estimators

    def __getitem__(self, i):
        return self.estimators_[i]

    def __iter__(self):
        return iter(self.estimators_)


def _one_tree(forest, t):
    import copy
    one = copy.copy(forest)
    a, b = int(forest.offsets[t]), int(forest.offsets[t + 1])
    for name in ("feature", "threshold", "children_left", "children_right", "missing_go_to_left", "impurity",
                 "n_node_samples", "weighted_n_node_samples", "value"):
        setattr(one, name, getattr(forest, name)[a:b])
    one.offsets = np.array([0, b - a])
    one.depth = forest.depth[t:t + 1]
    one._pack()
    return one


_FOREST_DOC = """

    Parameters follow scikit-learn's RandomForest{kind} (same names and defaults) plus
    ``max_bins`` (bins per feature, one of them for NaN). ``n_jobs=None`` uses forgeml's thread
    setting; the fitted model does not depend on it."""


class RandomForestClassifier(TreeClassifierMixin, BaseForest):
    """A random forest classifier: bootstrap samples, per-node random feature subsets."""
    __doc__ += _FOREST_DOC.format(kind="Classifier")

    _parameter_constraints = {
        **BaseForest._parameter_constraints,
        "criterion": [StrOptions({"gini", "entropy", "log_loss"})],
        "class_weight": [StrOptions({"balanced_subsample", "balanced"}), dict, None],
    }
    _tree_class = DecisionTreeClassifier

    def __init__(self, n_estimators=100, *, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features="sqrt", max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=True, oob_score=False, n_jobs=None, random_state=None,
                 class_weight=None, max_samples=None, max_bins=255):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.class_weight = class_weight
        self.max_samples = max_samples
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=True)



class RandomForestRegressor(RegressorMixin, BaseForest):
    """A random forest regressor (squared error): bootstrap samples, per-node feature subsets."""
    __doc__ += _FOREST_DOC.format(kind="Regressor")

    _parameter_constraints = {
        **BaseForest._parameter_constraints,
        "criterion": [StrOptions({"squared_error"})],
    }
    _tree_class = DecisionTreeRegressor

    def __init__(self, n_estimators=100, *, criterion="squared_error", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=1.0, max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=True, oob_score=False, n_jobs=None, random_state=None,
                 max_samples=None, max_bins=255):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.max_samples = max_samples
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=False)

    def predict(self, X):
        return self._raw_predict(X)[:, 0]
