"""``forgeml.onnx.to_onnx(estimator, X_sample)``: fitted forgeml trees and forests as ONNX-ML
TreeEnsemble graphs, shaped like skl2onnx's output (one float input "X"; a classifier gives
"label" (int64 class ids mapped to classes_) then "probabilities"; a regressor "variable").
SVC, NuSVC and LinearSVC give "label" then "scores" (their decision_function), built from
standard operators in float64 (_onnx_svm.py).

Every node keeps forgeml's rule: x <= threshold goes left, NaN goes where missing_go_to_left
says (``nodes_missing_value_tracks_true``). Leaf weights are the leaf values divided by the
number of trees, summed (classifier) or averaged (regressor) as forgeml's predict does. Before
returning, the graph runs in ONNX Runtime on X_sample and must match forgeml's predictions
(probabilities within 1e-5, identical labels) or it raises. Needs ``forgeml[onnx]``.
Keras models export with ``model.export(path, format="onnx")`` (forgeml.keras.export).
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_onnx"]


def _tree_arrays(forest):
    """Per node (all trees): tree id, node id within the tree, and the node fields."""
    sizes = np.diff(forest.offsets)
    tree_ids = np.repeat(np.arange(len(sizes)), sizes)
    node_ids = np.concatenate([np.arange(s) for s in sizes]) if len(sizes) else np.zeros(0, int)
    return tree_ids, node_ids


def _ensemble_attrs(forest, n_trees):
    tree_ids, node_ids = _tree_arrays(forest)
    leaf = forest.feature < 0
    return (
        dict(
            nodes_treeids=tree_ids.tolist(),
            nodes_nodeids=node_ids.tolist(),
            nodes_featureids=np.where(leaf, 0, forest.feature).tolist(),
            nodes_values=np.where(leaf, 0.0, forest.threshold).astype(np.float32).tolist(),
            nodes_modes=["LEAF" if lf else "BRANCH_LEQ" for lf in leaf],
            nodes_truenodeids=np.where(leaf, 0, forest.children_left).tolist(),
            nodes_falsenodeids=np.where(leaf, 0, forest.children_right).tolist(),
            nodes_missing_value_tracks_true=np.where(leaf, 0, forest.missing_go_to_left).astype(int).tolist(),
        ),
        tree_ids[leaf],
        node_ids[leaf],
        forest.value[leaf] / n_trees,
    )


def to_onnx(estimator, X_sample, *, target_opset=17, check=True):
    """The fitted estimator as an ``onnx.ModelProto`` (see the module docstring)."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise ImportError(f"to_onnx needs onnx and onnxruntime: pip install 'forgeml[onnx]' ({exc})") from None
    from . import svm

    if isinstance(estimator, (svm.SVC, svm.LinearSVC)):
        return _svm_to_onnx(estimator, np.asarray(X_sample, np.float32), target_opset, check, onnx, helper, TensorProto)
    forest = getattr(estimator, "_forest", None)
    if forest is None:
        raise NotImplementedError(
            f"to_onnx: {type(estimator).__name__} is not supported (fitted forgeml trees, forests, SVC, NuSVC "
            "and LinearSVC are)"
            if hasattr(estimator, "fit")
            else "to_onnx: expected an estimator"
        )
    X_sample = np.asarray(X_sample, np.float32)
    d = forest.n_features
    n_trees = forest.n_trees
    attrs, leaf_tree, leaf_node, leaf_value = _ensemble_attrs(forest, n_trees)
    k = leaf_value.shape[1]
    nodes = []
    classify = hasattr(estimator, "classes_")
    if classify:
        classes = np.asarray(estimator.classes_)
        ids = np.arange(k)
        attrs.update(
            class_treeids=np.repeat(leaf_tree, k).tolist(),
            class_nodeids=np.repeat(leaf_node, k).tolist(),
            class_ids=np.tile(ids, len(leaf_tree)).tolist(),
            class_weights=leaf_value.astype(np.float32).ravel().tolist(),
            classlabels_int64s=ids.tolist(),
            post_transform="NONE",
        )
        nodes.append(
            helper.make_node(
                "TreeEnsembleClassifier", ["X"], ["label_index", "probabilities"], domain="ai.onnx.ml", **attrs
            )
        )
        if np.issubdtype(classes.dtype, np.integer):
            table = helper.make_tensor("classes", TensorProto.INT64, [k], classes.astype(np.int64).tolist())
            nodes.append(helper.make_node("Constant", [], ["classes"], value=table))
            nodes.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0))
            label_type = TensorProto.INT64
        else:
            raise NotImplementedError("to_onnx: classifiers with non-integer classes_ are not supported yet")
        outputs = [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, k]),
        ]
    else:
        attrs.update(
            target_treeids=leaf_tree.tolist(),
            target_nodeids=leaf_node.tolist(),
            target_ids=[0] * len(leaf_tree),
            target_weights=(leaf_value[:, 0] * n_trees).astype(np.float32).tolist(),
            n_targets=1,
            aggregate_function="AVERAGE",
            post_transform="NONE",
        )
        nodes.append(helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain="ai.onnx.ml", **attrs))
        outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph(
        nodes, type(estimator).__name__, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])], outputs
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", target_opset), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="forgeml",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    if check:
        _check(model, estimator, X_sample, classify)
    return model


def _svm_to_onnx(est, X_sample, target_opset, check, onnx, helper, TensorProto):
    from sklearn.utils.validation import check_is_fitted

    from . import _onnx_svm, svm

    check_is_fitted(est)
    classes = np.asarray(est.classes_)
    if not np.issubdtype(classes.dtype, np.integer):
        raise NotImplementedError("to_onnx: classifiers with non-integer classes_ are not supported yet")
    build = _onnx_svm.linear_svc_nodes if isinstance(est, svm.LinearSVC) else _onnx_svm.svc_nodes
    nodes, score_shape = build(est, helper, TensorProto, "classes")
    table = helper.make_tensor("classes", TensorProto.INT64, [len(classes)], classes.astype(np.int64).tolist())
    nodes.append(helper.make_node("Constant", [], ["classes"], value=table))
    nodes.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0))
    d = est.n_features_in_
    graph = helper.make_graph(
        nodes,
        type(est).__name__,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, list(score_shape)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", target_opset)], producer_name="forgeml")
    model.ir_version = 8
    onnx.checker.check_model(model)
    if check:
        _check_scores(model, est, X_sample)
    return model


def _check_scores(model, est, X):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    label, scores = sess.run(None, {"X": X})
    want = np.asarray(est.decision_function(X), np.float64)
    diff = float(np.abs(scores - want).max()) if want.size else 0.0
    same = np.array_equal(label, est.predict(X))
    if diff > 1e-5 * max(1.0, float(np.abs(want).max())) or not same:
        raise RuntimeError(
            f"to_onnx: ONNX Runtime disagrees with {type(est).__name__} "
            f"(max |score diff| {diff:.3g}, labels equal: {same})"
        )


def _check(model, estimator, X, classify):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"X": X})
    if classify:
        proba = estimator.predict_proba(X)
        diff = float(np.abs(got[1] - proba).max()) if proba.size else 0.0
        if diff > 1e-5 or not np.array_equal(got[0], estimator.predict(X)):
            raise RuntimeError(
                f"to_onnx: ONNX Runtime disagrees with {type(estimator).__name__} "
                f"(max |proba diff| {diff:.3g}, labels equal: {np.array_equal(got[0], estimator.predict(X))})"
            )
    else:
        pred = estimator.predict(X)
        diff = float(np.abs(got[0][:, 0] - pred).max()) if pred.size else 0.0
        if diff > 1e-5 * max(1.0, float(np.abs(pred).max())):
            raise RuntimeError(
                f"to_onnx: ONNX Runtime disagrees with {type(estimator).__name__} (max |diff| {diff:.3g})"
            )
