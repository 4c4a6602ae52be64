"""scikit-learn's export_text, plot_tree and export_graphviz for forgeml trees.

scikit-learn's versions check the estimator's class (its own DecisionTree*) and branch on it;
forgeml trees carry the same public ``tree_`` arrays, so these hand scikit-learn's functions a
view of the fitted tree as an instance of scikit-learn's class (sharing the fitted attributes,
never fitted itself): the output is scikit-learn's, character for character."""

from __future__ import annotations

from sklearn import tree as _sk_tree
from sklearn.tree import DecisionTreeClassifier as _SkClf
from sklearn.tree import DecisionTreeRegressor as _SkReg

__all__ = ["export_text", "plot_tree", "export_graphviz"]


def _as_sklearn(decision_tree):
    """forgeml trees as a view; anything else unchanged (scikit-learn's checks then reject it)."""
    from sklearn.base import is_classifier

    from ._classes import BaseDecisionTree

    if not isinstance(decision_tree, BaseDecisionTree):
        return decision_tree
    cls = _SkClf if is_classifier(decision_tree) else _SkReg
    view = cls.__new__(cls)
    view.__dict__.update(decision_tree.__dict__)
    return view


def export_text(decision_tree, **kwargs) -> str:
    """The tree's rules as text (scikit-learn's export_text; same keyword arguments)."""
    return _sk_tree.export_text(_as_sklearn(decision_tree), **kwargs)


def plot_tree(decision_tree, **kwargs):
    """Draw the tree with matplotlib (scikit-learn's plot_tree; same keyword arguments)."""
    return _sk_tree.plot_tree(_as_sklearn(decision_tree), **kwargs)


def export_graphviz(decision_tree, out_file=None, **kwargs):
    """The tree in Graphviz dot format (scikit-learn's export_graphviz; same keyword arguments)."""
    return _sk_tree.export_graphviz(_as_sklearn(decision_tree), out_file=out_file, **kwargs)
