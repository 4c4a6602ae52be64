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
from ..tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor
from ..tree import _fit, _format
from ..tree._classes import BaseDecisionTree, TreeClassifierMixin

__all__ = ["RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"]


class BaseForest(BaseEstimator):
    _parameter_constraints: dict = {
        **BaseDecisionTree._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "oob_score": ["boolean", callable],
        "n_jobs": [Integral, None],
        "max_samples": [None, Interval(RealNotInt, 0.0, None, closed="neither"),
                        Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
    }
    _tree_class = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True  # y (n, k)
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_forest")

    def _n_draws(self, n: int, sample_weight) -> int:
        """Rows each bootstrap draws: n, the int max_samples, or the float max_samples times the
        number of rows (the total sample weight when given: frequency weights)."""
        if self.max_samples is None:
            return n
        if isinstance(self.max_samples, Integral):
            return int(self.max_samples)
        total = n if sample_weight is None else float(np.sum(sample_weight))
        draws = max(int(self.max_samples * total), 1)
        if draws < max(10, n ** (1 / 3)):
            warnings.warn(f"Using the fractional value max_samples={self.max_samples} with {total} samples gives a "
                          f"low number ({draws}) of bootstrap samples. We recommend passing `max_samples` as an "
                          "integer instead.", UserWarning)
        return draws

    def _fit(self, X, y, sample_weight, classify: bool):
        import scipy.sparse as sp
        if sp.issparse(y):
            raise ValueError("sparse multilabel-indicator for y is not supported.")
        X, y = _fit.check_X_y(self, X, y, classify, column_warning=True)
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
            y_enc = _fit.encode_targets(self, y)
            weight = _fit.sample_weights(X, y, sample_weight, None)
        if not weight.any():
            raise ValueError("sample_weight: the total weight is zero; at least one sample needs a positive weight")
        if self.oob_score and y.ndim == 2:  # scikit-learn's check, on the encoded targets
            from sklearn.utils.multiclass import type_of_target
            y_type = type_of_target(y_enc)
            if y_type == "unknown" or (classify and y_type == "multiclass-multioutput"):
                raise ValueError("The type of target cannot be used to compute OOB estimates. Got "
                                 f"{y_type} while only the following are supported: continuous, "
                                 "continuous-multioutput, binary, multiclass, multilabel-indicator.")
        n_draws = self._n_draws(n, sample_weight) if self.bootstrap else n
        seeds = _fit.seeds_for(self.random_state, self.n_estimators)
        old = getattr(self, "_forest", None) if self.warm_start else None
        n_old = old.n_trees if old is not None else 0
        if n_old > self.n_estimators:
            raise ValueError(f"n_estimators={self.n_estimators} must be larger or equal to "
                             f"len(estimators_)={n_old} when warm_start==True")
        if old is not None and n_old == self.n_estimators:
            warnings.warn("Warm-start fitting without increasing n_estimators does not fit new trees.", UserWarning)
        else:
            if old is None:  # the cut points depend on the first seed only: warm starts reuse them
                self._bin_seed = int(seeds[0]) ^ 0x9E3779B9
            self.max_features_ = _fit.resolve_max_features(self.max_features, X.shape[1])
            new = _fit.grow(
                self, X, y_enc, weight, criterion=self.criterion,
                n_classes=_fit.n_class_slots(self) if classify else 1,
                seeds=seeds[n_old:], max_features=self.max_features_, bootstrap=self.bootstrap, n_draws=n_draws,
                balanced_subsample=classify and self.class_weight == "balanced_subsample" and self.bootstrap,
                threads=_fit.threads_for(self.n_jobs), bin_seed=self._bin_seed)
            if self.ccp_alpha > 0:
                new = new.pruned(self.ccp_alpha)
            self._forest = new if old is None else old.concat(new)
            self._seeds = seeds
            self._n_draws_ = n_draws
            self._n_samples_ = n
        if self.oob_score and (old is None or n_old < self.n_estimators or not hasattr(self, "oob_score_")):
            self._set_oob_score_and_attributes(X, y, y_enc, n_draws, classify)
        elif not self.oob_score:
            for name in ("oob_score_", "oob_decision_function_", "oob_prediction_"):
                self.__dict__.pop(name, None)
        return self

    def save(self, path) -> None:
        """Writes the fitted forest to `path` in forgeml's compact forest file (flat arrays, no
        pickle; format in forgeml/tree/_format.py). Read it back with ``forgeml.ensemble.load``."""
        check_is_fitted(self)
        _format.save(self, path)

    def _bootstrap_counts(self, t: int):
        if not self.bootstrap:
            return np.ones(self._n_samples_, dtype=np.int32)
        return ops.tree_bootstrap_counts(self._n_samples_, self._n_draws_, int(self._seeds[t]))

    @property
    def estimators_samples_(self):
        """Row indices each tree was grown on (a row drawn twice appears twice), int32."""
        check_is_fitted(self)
        n = self._n_samples_
        return [np.repeat(np.arange(n, dtype=np.int32), self._bootstrap_counts(t)) for t in range(len(self._seeds))]

    def decision_path(self, X):
        """(indicator CSR (n_samples, total nodes), n_nodes_ptr): the nodes of every tree each
        sample passes through, trees side by side."""
        import scipy.sparse as sp
        check_is_fitted(self)
        X = _fit.check_X(self, X, reset=False)
        paths = [self._forest.tree(t).decision_path(X) for t in range(self._forest.n_trees)]
        return sp.hstack(paths).tocsr(), np.asarray(self._forest.offsets, dtype=np.intp)

    def _set_oob_score_and_attributes(self, X, y, y_enc, n_draws, classify):
        n = X.shape[0]
        k = self._forest.value.shape[1]
        total = np.zeros((n, k))
        seen = np.zeros(n, dtype=np.int64)
        threads = _fit.threads_for(self.n_jobs)
        for t in range(len(self._seeds)):  # tree order: the sums do not depend on threads
            rows = np.flatnonzero(self._bootstrap_counts(t) == 0)
            if len(rows):
                total[rows] += self._forest.predict(X[rows], threads=threads, trees=[t])
                seen[rows] += 1
        if (seen == 0).any():
            warnings.warn("Some inputs do not have OOB scores. This probably means too few trees were used "
                          "to compute any reliable OOB estimates.", UserWarning)
        pred = total / np.maximum(seen, 1)[:, None]
        scorer = self.oob_score if callable(self.oob_score) else None
        if self.n_outputs_ > 1:  # scikit-learn's layout: (n, classes, outputs) / (n, outputs)
            pred = pred.reshape(n, self.n_outputs_, -1).transpose(0, 2, 1)
            if classify:
                self.oob_decision_function_ = pred
                self.oob_score_ = (scorer or accuracy_score)(y_enc, np.argmax(pred, axis=1))
            else:
                self.oob_prediction_ = pred[:, 0, :]
                self.oob_score_ = (scorer or r2_score)(y, self.oob_prediction_)
            return
        if classify:
            self.oob_decision_function_ = pred
            y_pred = self.classes_[np.argmax(pred, axis=1)]
            self.oob_score_ = (scorer or accuracy_score)(y, y_pred)
        else:
            self.oob_prediction_ = pred[:, 0]
            self.oob_score_ = (scorer or r2_score)(y, self.oob_prediction_)

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
    def _n_samples_bootstrap(self):  # scikit-learn's name for the rows each bootstrap draws
        return self._n_draws_

    @property
    def estimator(self):
        """The kind of tree the forest grows, unfitted (scikit-learn's forests take it as a fixed
        parameter; here it is read-only)."""
        return self._tree_class()

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
            est.n_outputs_ = self.n_outputs_
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
        "class_weight": [StrOptions({"balanced_subsample", "balanced"}), dict, list, None],
    }
    _tree_class = DecisionTreeClassifier

    def __init__(self, n_estimators=100, *, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features="sqrt", max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=True, oob_score=False, n_jobs=None, random_state=None,
                 class_weight=None, max_samples=None, warm_start=False, ccp_alpha=0.0, monotonic_cst=None,
                 max_bins=255):
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
        self.warm_start = warm_start
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=True)



class RandomForestRegressor(RegressorMixin, BaseForest):
    """A random forest regressor (squared error): bootstrap samples, per-node feature subsets."""
    __doc__ += _FOREST_DOC.format(kind="Regressor")

    _parameter_constraints = {
        **BaseForest._parameter_constraints,
        "criterion": [StrOptions({"squared_error", "poisson", "absolute_error"})],
    }
    _tree_class = DecisionTreeRegressor

    def __init__(self, n_estimators=100, *, criterion="squared_error", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=1.0, max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=True, oob_score=False, n_jobs=None, random_state=None,
                 max_samples=None, warm_start=False, ccp_alpha=0.0, monotonic_cst=None, max_bins=255):
        if isinstance(criterion, str) and criterion == "friedman_mse":
            criterion = "squared_error"  # scikit-learn >= 1.9: deprecated alias, same splits
            warnings.warn('Value `"friedman_mse"` for `criterion` is deprecated: it maps to `"squared_error"` (both '
                          'give the same splits). Use `criterion="squared_error"` to remove this warning.',
                          FutureWarning)
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
        self.warm_start = warm_start
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, classify=False)

    def predict(self, X):
        raw = self._raw_predict(X)
        return raw[:, 0] if self.n_outputs_ == 1 else raw


class ExtraTreesClassifier(RandomForestClassifier):
    """Extremely randomized trees (scikit-learn's ExtraTreesClassifier): every tree on all rows by
    default (bootstrap=False), each drawn feature split at a random boundary between its occupied
    bins, the best of those kept."""
    __doc__ += _FOREST_DOC.format(kind="Classifier")
    _tree_class = ExtraTreeClassifier
    splitter = "random"  # not a parameter: what the forest's trees use

    def __init__(self, n_estimators=100, *, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features="sqrt", max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=False, oob_score=False, n_jobs=None, random_state=None,
                 class_weight=None, max_samples=None, warm_start=False, ccp_alpha=0.0, monotonic_cst=None,
                 max_bins=255):
        super().__init__(n_estimators, criterion=criterion, max_depth=max_depth, min_samples_split=min_samples_split,
                         min_samples_leaf=min_samples_leaf, min_weight_fraction_leaf=min_weight_fraction_leaf,
                         max_features=max_features, max_leaf_nodes=max_leaf_nodes,
                         min_impurity_decrease=min_impurity_decrease, bootstrap=bootstrap, oob_score=oob_score,
                         n_jobs=n_jobs, random_state=random_state, class_weight=class_weight,
                         max_samples=max_samples, warm_start=warm_start, ccp_alpha=ccp_alpha,
                         monotonic_cst=monotonic_cst, max_bins=max_bins)


class ExtraTreesRegressor(RandomForestRegressor):
    """Extremely randomized trees (scikit-learn's ExtraTreesRegressor), bootstrap=False by default."""
    __doc__ += _FOREST_DOC.format(kind="Regressor")
    _tree_class = ExtraTreeRegressor
    splitter = "random"

    def __init__(self, n_estimators=100, *, criterion="squared_error", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, min_weight_fraction_leaf=0.0, max_features=1.0, max_leaf_nodes=None,
                 min_impurity_decrease=0.0, bootstrap=False, oob_score=False, n_jobs=None, random_state=None,
                 max_samples=None, warm_start=False, ccp_alpha=0.0, monotonic_cst=None, max_bins=255):
        super().__init__(n_estimators, criterion=criterion, max_depth=max_depth, min_samples_split=min_samples_split,
                         min_samples_leaf=min_samples_leaf, min_weight_fraction_leaf=min_weight_fraction_leaf,
                         max_features=max_features, max_leaf_nodes=max_leaf_nodes,
                         min_impurity_decrease=min_impurity_decrease, bootstrap=bootstrap, oob_score=oob_score,
                         n_jobs=n_jobs, random_state=random_state, max_samples=max_samples,
                         warm_start=warm_start, ccp_alpha=ccp_alpha, monotonic_cst=monotonic_cst,
                         max_bins=max_bins)
