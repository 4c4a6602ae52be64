"""DecisionTreeClassifier and DecisionTreeRegressor on forgeml's binned tree kernels, with
scikit-learn's parameter names, defaults and fitted attributes (plus ``max_bins``)."""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _fit

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"]


class BaseDecisionTree(BaseEstimator):
    _parameter_constraints: dict = {
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_split": [Interval(Integral, 2, None, closed="left"),
                              Interval(RealNotInt, 0.0, 1.0, closed="right")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left"),
                             Interval(RealNotInt, 0.0, 1.0, closed="neither")],
        "min_weight_fraction_leaf": [Interval(Real, 0.0, 0.5, closed="both")],
        "max_features": [Interval(Integral, 1, None, closed="left"),
                         Interval(RealNotInt, 0.0, 1.0, closed="right"), StrOptions({"sqrt", "log2"}), None],
        "random_state": ["random_state"],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
        "min_impurity_decrease": [Interval(Real, 0.0, None, closed="left")],
        "max_bins": [Interval(Integral, 2, 255, closed="both")],
        "ccp_alpha": [Interval(Real, 0.0, None, closed="left")],
        "monotonic_cst": ["array-like", None],
        "splitter": [StrOptions({"best", "random"})],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True  # y (n, k)
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_forest")

    @property
    def tree_(self):
        """The fitted tree (scikit-learn's ``tree_`` attributes); a tree loaded from a compact
        forest file builds it on first use."""
        d = self.__dict__
        if "tree_" not in d:
            if "_forest" not in d:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute 'tree_'")
            d["tree_"] = self._forest.tree(0)
        return d["tree_"]

    @tree_.setter
    def tree_(self, tree):
        self.__dict__["tree_"] = tree

    @tree_.deleter
    def tree_(self):
        del self.__dict__["tree_"]

    def _fit(self, X, y, sample_weight, classify: bool):
        X, y = _fit.check_X_y(self, X, y, classify)
        if classify:
            y_enc = _fit.encode_classes(self, y)
            weight = _fit.sample_weights(X, y, sample_weight, self.class_weight)
        else:
            y_enc = _fit.encode_targets(self, y)
            weight = _fit.sample_weights(X, y, sample_weight, None)
        if not weight.any():
            raise ValueError("sample_weight: the total weight is zero; at least one sample needs a positive weight")
        self.max_features_ = _fit.resolve_max_features(self.max_features, X.shape[1])
        forest = _fit.grow(self, X, y_enc, weight, criterion=self.criterion,
                           n_classes=_fit.n_class_slots(self) if classify else 1, seeds=_fit.seeds_for(self.random_state, 1),
                           max_features=self.max_features_, threads=_fit.threads_for(None))
        if self.ccp_alpha > 0:
            forest = forest.pruned(self.ccp_alpha)
        self._forest = forest
        self.tree_ = forest.tree(0)
        return self

    def cost_complexity_pruning_path(self, X, y, sample_weight=None):
        """Effective alphas and total leaf impurities of minimal cost-complexity pruning
        (scikit-learn's Bunch with ``ccp_alphas`` and ``impurities``)."""
        from sklearn.base import clone
        from sklearn.utils import Bunch

        from ._prune import pruning_path
        est = clone(self).set_params(ccp_alpha=0.0)
        est.fit(X, y, sample_weight=sample_weight)
        alphas, impurities = pruning_path(est._forest.tree_fields(0))
        return Bunch(ccp_alphas=alphas, impurities=impurities)

    def decision_path(self, X):
        """CSR indicator (n_samples, n_nodes) of the nodes each sample passes through."""
        check_is_fitted(self)
        X = _fit.check_X(self, X, reset=False)
        return self.tree_.decision_path(X)

    def _raw_predict(self, X):
        forest = self.__dict__.get("_forest")
        if forest is None:
            check_is_fitted(self)
        elif type(X) is np.ndarray and "feature_names_in_" not in self.__dict__:
            try:  # Forest.predict_few inlined (a frame costs ~5 us on a cold cache)
                out = forest._few(X)  # a row or a few: one C call (None: not that kind of X)
            except ValueError as e:
                forest._raise_file_error(e)
                raise
            if out is not None:
                return out
        X = _fit.check_X_predict(self, X)
        return self._forest.predict(X, threads=_fit.threads_for(None))

    def save(self, path) -> None:
        """Writes the fitted tree to `path` in forgeml's compact forest file (read it back with
        ``forgeml.ensemble.load``)."""
        from . import _format
        check_is_fitted(self)
        _format.save(self, path)

    def apply(self, X):
        """Index of the leaf each sample ends up in, (n_samples,)."""
        check_is_fitted(self)
        X = _fit.check_X(self, X, reset=False)
        return self._forest.apply(X, threads=_fit.threads_for(None))[:, 0]

    def get_depth(self) -> int:
        check_is_fitted(self)
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        check_is_fitted(self)
        return self.tree_.n_leaves

    @property
    def feature_importances_(self):
        check_is_fitted(self)
        return self.tree_.compute_feature_importances()


class TreeClassifierMixin(ClassifierMixin):
    """predict / predict_proba / predict_log_proba of trees and forests, from ``_raw_predict``
    (class probabilities per row; k outputs side by side, each padded to the most classes)."""

    def predict_proba(self, X):
        d = self.__dict__
        forest = d.get("_forest")
        if forest is not None and type(X) is np.ndarray and "feature_names_in_" not in d and d.get("n_outputs_") == 1:
            try:  # _raw_predict's few-row call inlined: one frame less (~5 us of a cold 1-row call)
                out = forest._few(X)
            except ValueError as e:
                forest._raise_file_error(e)
                raise
            if out is not None:
                return out
        raw = self._raw_predict(X)
        if self.n_outputs_ == 1:
            return raw
        raw = raw.reshape(raw.shape[0], self.n_outputs_, -1)
        return [raw[:, o, :n] for o, n in enumerate(self.n_classes_)]  # scikit-learn: one array per output

    def predict_log_proba(self, X):
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba) if self.n_outputs_ == 1 else [np.log(p) for p in proba]

    def predict(self, X):
        proba = self.predict_proba(X)
        if self.n_outputs_ == 1:
            return self.classes_[np.argmax(proba, axis=1)]
        out = np.empty((proba[0].shape[0], self.n_outputs_), dtype=self.classes_[0].dtype)
        for o, p in enumerate(proba):
            out[:, o] = self.classes_[o][np.argmax(p, axis=1)]
        return out


class DecisionTreeClassifier(TreeClassifierMixin, BaseDecisionTree):
    """A decision tree classifier (scikit-learn's API) grown on binned features.

    Features are binned once into at most ``max_bins`` quantile bins (one of them for NaN); a
    tree with bins covering every distinct value splits exactly like an exact tree. NaN values
    go to the side that gains most at each split (learned in fit)."""

    _parameter_constraints = {
        **BaseDecisionTree._parameter_constraints,
        "criterion": [StrOptions({"gini", "entropy", "log_loss"})],
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(self, *, criterion="gini", splitter="best", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=None, random_state=None,
                 max_leaf_nodes=None,
                 min_impurity_decrease=0.0, class_weight=None, ccp_alpha=0.0, monotonic_cst=None, max_bins=255):
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.class_weight = class_weight
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=True)



class DecisionTreeRegressor(RegressorMixin, BaseDecisionTree):
    """A decision tree regressor (scikit-learn's API; squared_error, poisson or absolute_error) grown on binned features."""

    _parameter_constraints = {
        **BaseDecisionTree._parameter_constraints,
        "criterion": [StrOptions({"squared_error", "poisson", "absolute_error"})],
    }

    def __init__(self, *, criterion="squared_error", splitter="best", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=None, random_state=None,
                 max_leaf_nodes=None,
                 min_impurity_decrease=0.0, ccp_alpha=0.0, monotonic_cst=None, max_bins=255):
        if isinstance(criterion, str) and criterion == "friedman_mse":
            # scikit-learn >= 1.9 deprecates it as the same criterion as squared_error
            criterion = "squared_error"
            warnings.warn('Value `"friedman_mse"` for `criterion` is deprecated: it maps to `"squared_error"` (both '
                          'give the same splits). Use `criterion="squared_error"` to remove this warning.',
                          FutureWarning)
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=False)

    def predict(self, X):
        raw = self._raw_predict(X)
        return raw[:, 0] if self.n_outputs_ == 1 else raw


class ExtraTreeClassifier(DecisionTreeClassifier):
    """An extremely randomized tree classifier: each drawn feature is split at a random boundary
    between its occupied bins and the best of those splits is kept (scikit-learn's
    ExtraTreeClassifier; use it in ensembles)."""

    def __init__(self, *, criterion="gini", splitter="random", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features="sqrt", random_state=None,
                 max_leaf_nodes=None, min_impurity_decrease=0.0, class_weight=None, ccp_alpha=0.0,
                 monotonic_cst=None, max_bins=255):
        super().__init__(criterion=criterion, splitter=splitter, max_depth=max_depth,
                         min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                         min_weight_fraction_leaf=min_weight_fraction_leaf, max_features=max_features,
                         random_state=random_state, max_leaf_nodes=max_leaf_nodes,
                         min_impurity_decrease=min_impurity_decrease, class_weight=class_weight,
                         ccp_alpha=ccp_alpha, monotonic_cst=monotonic_cst, max_bins=max_bins)


class ExtraTreeRegressor(DecisionTreeRegressor):
    """An extremely randomized tree regressor (scikit-learn's ExtraTreeRegressor)."""

    def __init__(self, *, criterion="squared_error", splitter="random", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=1.0, random_state=None,
                 min_impurity_decrease=0.0, max_leaf_nodes=None, ccp_alpha=0.0, monotonic_cst=None, max_bins=255):
        super().__init__(criterion=criterion, splitter=splitter, max_depth=max_depth,
                         min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                         min_weight_fraction_leaf=min_weight_fraction_leaf, max_features=max_features,
                         random_state=random_state, max_leaf_nodes=max_leaf_nodes,
                         min_impurity_decrease=min_impurity_decrease, ccp_alpha=ccp_alpha,
                         monotonic_cst=monotonic_cst, max_bins=max_bins)
