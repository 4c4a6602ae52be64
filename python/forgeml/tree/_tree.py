"""Fitted trees as flat NumPy arrays (picklable), scikit-learn's ``tree_`` layout where it has one.

A :class:`Tree` holds one tree; :class:`Forest` the same arrays concatenated over many trees,
packed once for the prediction kernel. Nothing here touches the compiled modules directly: the
kernels are reached through ``forgeml.ops``.
"""
from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp

from .. import ops

TREE_LEAF = -1
TREE_UNDEFINED = -2
TREE_FIELDS = ("feature", "threshold", "children_left", "children_right", "missing_go_to_left", "impurity",
               "n_node_samples", "weighted_n_node_samples", "value")
# derived, rebuilt on first use (and, for a loaded forest, the file's arrays behind them)
_LAYOUTS = ("nodes", "roots", "_compact", "_rows", "_few", "_saved_compact", "_saved_offsets", "_saved_top",
            "_source")
_UNPACKED = ("feature", "threshold", "children_left", "children_right")  # what nodes encodes
_FEW_ROWS = 16  # predict_few's rows (a loaded forest: straight from its file's arrays)
_TOP_LEVELS = 6  # levels of each tree the few-row walk reads from one block first (compact_rows.h)


class Forest:
    """Trees grown by ``ops.tree_grow_forest``: concatenated node arrays, thresholds as floats.

    Fields per node (all trees): feature (-2 at leaves), threshold (float32; -2 at leaves),
    children_left / children_right (tree-local, -1 at leaves), missing_go_to_left, impurity,
    n_node_samples, weighted_n_node_samples, value (nodes, n_outputs * K) with K classes (or 1) per
    output. offsets (T+1) delimit the trees."""

    n_outputs = 1  # forests pickled before multi-output support

    def __init__(self, grown: dict, edges: np.ndarray, n_features: int, n_outputs: int = 1):
        self.offsets = grown["offsets"]
        self.depth = grown["depth"]
        if "threshold" in grown:  # grown with edges: the fields in their final dtypes, kept as they are
            self.feature = grown["feature"]
            self.threshold = grown["threshold"]
            self.children_left = grown["left"]
            self.children_right = grown["right"]
        else:
            self._final_fields(grown, edges)
        self.missing_go_to_left = np.asarray(grown["nan_left"]).astype(np.uint8, copy=False)
        self.impurity = grown["impurity"]
        self.n_node_samples = grown["n_samples"]
        self.weighted_n_node_samples = grown["weighted_n"]
        self.value = grown["value"]
        self.n_features = n_features
        self.n_outputs = n_outputs
        self._pack()

    def _final_fields(self, grown: dict, edges: np.ndarray):
        """feature / threshold / children from the grower's int32 fields and thr_bin. Millions of
        nodes for a large forest: each field is made with as few full-size temporaries as possible
        (fresh pages cost more than the arithmetic on them)."""
        feat = np.asarray(grown["feature"])
        leaf = feat < 0
        self.feature = feat.astype(np.intp)
        self.feature[leaf] = TREE_UNDEFINED
        edges = np.asarray(edges)
        if feat.size:  # threshold = edges[feature, thr_bin] by flat index (leaves read edges[0, 0], then -2)
            flat = self.feature * edges.shape[1]
            flat += grown["thr_bin"]
            flat[leaf] = 0
            thr = np.take(edges.astype(np.float64).ravel(), flat)
        else:
            thr = np.empty(0, dtype=np.float64)
        thr[leaf] = TREE_UNDEFINED
        self.threshold = thr
        self.children_left = grown["left"].astype(np.intp)
        self.children_right = grown["right"].astype(np.intp)

    @classmethod
    def from_trees(cls, trees: list, depths, n_features: int, n_outputs: int = 1) -> "Forest":
        """A forest from per-tree field dicts (tree_fields' layout)."""
        self = cls.__new__(cls)
        sizes = [len(t["feature"]) for t in trees]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.depth = np.asarray(depths, dtype=np.int32)
        for name in TREE_FIELDS:
            setattr(self, name, np.concatenate([t[name] for t in trees]))
        self.n_features = n_features
        self.n_outputs = n_outputs
        self._pack()
        return self

    def tree_fields(self, t: int) -> dict:
        a, b = int(self.offsets[t]), int(self.offsets[t + 1])
        return {name: getattr(self, name)[a:b] for name in TREE_FIELDS}

    def concat(self, other: "Forest") -> "Forest":
        trees = [f.tree_fields(t) for f in (self, other) for t in range(f.n_trees)]
        return Forest.from_trees(trees, np.concatenate([self.depth, other.depth]), self.n_features, self.n_outputs)

    def subset(self, keep) -> "Forest":
        keep = list(keep)
        return Forest.from_trees([self.tree_fields(t) for t in keep], self.depth[keep], self.n_features,
                                 self.n_outputs)

    def pruned(self, ccp_alpha: float) -> "Forest":
        """Every tree pruned by minimal cost-complexity pruning at ccp_alpha."""
        from ._prune import prune
        out = [prune(self.tree_fields(t), ccp_alpha) for t in range(self.n_trees)]
        return Forest.from_trees([f for f, _ in out], [d for _, d in out], self.n_features, self.n_outputs)

    def _pack(self):
        """Drops the prediction layouts (after the fields changed); they are rebuilt on first use:
        ``nodes`` / ``roots`` (the flat kernel array) and ``_compact`` (the validated layout that
        predict walks, see ops.tree_compact_forest)."""
        if "_saved_compact" in self.__dict__:  # loaded from a file: its fields come from nodes
            self._materialize()
        for name in _LAYOUTS:
            self.__dict__.pop(name, None)

    def _build_nodes(self):
        """nodes (N, 4) int32 for the kernels: {feature | nan_left << 30, threshold bits, left, right}."""
        n_trees = len(self.offsets) - 1
        sizes = np.diff(self.offsets)
        base = np.repeat(self.offsets[:-1], sizes)
        internal = self.feature >= 0
        nodes = np.empty((len(self.feature), 4), dtype=np.int32)
        nodes[:, 0] = np.where(internal, self.feature | (self.missing_go_to_left.astype(np.intp) << 30), -1)
        nodes[:, 1] = self.threshold.astype(np.float32).view(np.int32)
        nodes[:, 2] = np.where(internal, self.children_left + base, -1)
        nodes[:, 3] = np.where(internal, self.children_right + base, -1)
        self.nodes = nodes
        self.roots = np.ascontiguousarray(self.offsets[:n_trees], dtype=np.int64)

    def _unpack(self):
        """The per-node fields that ``nodes`` encodes, for a forest loaded from a compact file (which
        stores only nodes): thresholds are float32 values, so float64 holds them exactly."""
        nodes = self.nodes
        base = np.repeat(np.asarray(self.offsets[:-1], dtype=np.intp), np.diff(self.offsets))
        word = nodes[:, 0]
        internal = word >= 0
        self.feature = np.where(internal, word & 0x3FFFFFFF, TREE_UNDEFINED).astype(np.intp)
        with np.errstate(invalid="ignore"):  # a signalling NaN (a damaged file) stays a NaN
            self.threshold = nodes[:, 1].view(np.float32).astype(np.float64)
        self.children_left = np.where(internal, nodes[:, 2] - base, TREE_LEAF).astype(np.intp)
        self.children_right = np.where(internal, nodes[:, 3] - base, TREE_LEAF).astype(np.intp)

    def _nodes_from_file(self):
        """nodes and roots of a forest loaded from a compact file, which stores the prediction
        layout only: the layout is validated (``_compact``), then each compact node's id
        (compact_source) must be a node of its own tree, every node of the tree once, the root
        first; the flat array built from it is checked as the kernels require."""
        cnodes, source, croots = self._saved_compact
        self._compact  # noqa: B018 (validates the layout: ForestFileError naming the file)
        offsets = self.offsets
        N = len(self.value)
        with self._file_errors():
            sizes = np.diff(offsets)
            if not np.array_equal(np.diff(np.append(croots, N)), sizes):
                raise ValueError("compact_roots: the trees' sizes differ from offsets'")
            source = source.astype(np.intp)
            first = np.repeat(offsets[:-1], sizes)
            if (np.any(source < first) or np.any(source >= np.repeat(offsets[1:], sizes))
                    or np.any(np.bincount(source, minlength=N) != 1) or np.any(source[croots] != offsets[:-1])):
                raise ValueError("compact_source: expected each tree's node ids once each, its root first")
            here = np.arange(N)
            right = cnodes[:, 2].astype(np.intp)
            leaf = right == here - np.repeat(croots, sizes)
            nodes = np.empty((N, 4), dtype=np.int32)
            nodes[source, 0] = np.where(leaf, -1, cnodes[:, 0])
            nodes[source, 1] = np.where(leaf, np.float32(TREE_UNDEFINED).view(np.int32), cnodes[:, 1])
            nodes[source, 2] = np.where(leaf, -1, source[np.where(leaf, 0, here + 1)])
            nodes[source, 3] = np.where(leaf, -1, source[np.where(leaf, 0, right + np.repeat(croots, sizes))])
            roots = np.ascontiguousarray(offsets[:-1], dtype=np.int64)
            ops.tree_check_nodes(nodes, roots, self.n_features)
        self.nodes, self.roots = nodes, roots

    def _materialize(self):
        """A loaded forest's fields as plain attributes (before its file's layouts are dropped)."""
        for name in ("offsets", *_UNPACKED):
            getattr(self, name)

    def __getattr__(self, name):  # only for attributes not set: the lazily built ones
        loaded = "_saved_compact" in self.__dict__
        if name == "offsets" and "_saved_offsets" in self.__dict__:  # loaded: checked on first use
            offsets = self._saved_offsets
            with self._file_errors():
                if offsets[0] != 0 or offsets[-1] != len(self.value) or np.any(np.diff(offsets) < 1):
                    raise ValueError("offsets: expected T + 1 increasing node offsets from 0 to the node count")
            self.offsets = offsets
            return offsets
        if name in ("nodes", "roots"):
            self._nodes_from_file() if loaded else self._build_nodes()
            return self.__dict__[name]
        if name == "_compact":
            if loaded:  # loaded from a file: its layout, checked on first use
                with self._file_errors():
                    self._compact = ops.tree_compact_from_arrays(*self._saved_compact, len(self.value), self.n_features)
            else:
                self._compact = ops.tree_compact_forest(self.nodes, self.roots, self.n_features)
            return self._compact
        if name == "_few":  # predict_few's builtin
            with self._file_errors() if loaded else contextlib.nullcontext():
                rows = (self._rows if loaded
                        else ops.tree_compact_rows_from(self._compact, self.value, _FEW_ROWS, _TOP_LEVELS))
            self._few = rows.few
            return self._few
        if name == "_rows" and loaded:  # few-row predictor over the file's arrays (O(trees) checks)
            ops.tree_file_hugepages(self.value)  # before the walks fault the file in (not in load: ~10-20 us)
            with self._file_errors():
                top = self.__dict__.get("_saved_top")  # format version 3: top blocks, leaves hold their rows
                self._rows = ops.tree_compact_rows(*self._saved_compact, self.value, self.n_features, _FEW_ROWS,
                                                   top=top, leaf_rows=top is not None)
            return self._rows
        if name in _UNPACKED and loaded:
            self.nodes  # noqa: B018 (rebuilt and checked)
            self._unpack()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @contextlib.contextmanager
    def _file_errors(self):
        """A damaged node array of a loaded file: ForestFileError naming the file."""
        try:
            yield
        except ValueError as e:
            raise self._file_error(e) from e

    def _file_error(self, e: ValueError):
        from ._format import ForestFileError

        return ForestFileError(f"{self._source}: not a valid forgeml forest file: {e}")

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    def __getstate__(self):  # the prediction layouts are rebuilt on load
        state = {name: getattr(self, name) for name in ("offsets", *_UNPACKED)}
        state.update(self.__dict__)
        for name in _LAYOUTS:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def predict(self, X, threads=None, trees=None):
        """Mean leaf value over the trees (or the tree indices in `trees`), (n, k) float64. A few rows
        take predict_few's row walk. The same result bit for bit on every path."""
        if trees is None and X.shape[0] <= _FEW_ROWS:
            out = self.predict_few(X)
            if out is not None:
                return out
        sel = None if trees is None else np.atleast_1d(trees)
        return ops.tree_compact_predict(self._compact, X, self.value, trees=sel, threads=threads)

    def predict_few(self, X):
        """predict(X) for X a 2-D float32 / float64 ndarray (any strides) of the forest's width and
        at most _FEW_ROWS rows, every value finite or NaN as float32; None for anything else: the
        caller validates X and calls predict. The row walk streams the trees through many slots
        (their cache misses overlap) on the calling thread: one C call, no NumPy call but the
        output's allocation (each costs ~10-20 us on a cold cache); up to 16 rows it beats the batch
        kernel (tree_predict_profile.md round 6). A loaded forest walks its file's arrays, checking
        each node it reads, with no pass over the forest first."""
        try:
            return self._few(X)
        except ValueError as e:
            self._raise_file_error(e)
            raise

    def _raise_file_error(self, e: ValueError):
        """predict_few's ValueError e for a loaded forest (its file is damaged): ForestFileError."""
        if "_saved_compact" in self.__dict__:
            raise self._file_error(e) from e

    def apply(self, X, threads=None):
        return ops.tree_forest_apply(X, self.nodes, self.roots, threads=threads)

    def importances(self) -> np.ndarray:
        """Impurity-based importance per tree (T, d), each row normalised to sum 1 (or all 0)."""
        T, d = self.n_trees, self.n_features
        out = np.zeros((T, d))
        tree_of = np.repeat(np.arange(T), np.diff(self.offsets))
        internal = np.flatnonzero(self.feature >= 0)
        if len(internal):
            base = self.offsets[tree_of[internal]]
            wi = self.weighted_n_node_samples * self.impurity
            gain = wi[internal] - wi[self.children_left[internal] + base] - wi[self.children_right[internal] + base]
            np.add.at(out, (tree_of[internal], self.feature[internal]), gain)
        s = out.sum(axis=1, keepdims=True)
        np.divide(out, s, out=out, where=s > 0)
        return out

    def tree(self, t: int) -> "Tree":
        return Tree(self, t)


class Tree:
    """One tree of a Forest, with scikit-learn's ``tree_`` attribute names."""

    def __init__(self, forest: Forest, t: int):
        a, b = int(forest.offsets[t]), int(forest.offsets[t + 1])
        self.node_count = b - a
        self.capacity = self.node_count
        self.n_features = forest.n_features
        self.max_depth = int(forest.depth[t])
        for name in ("feature", "threshold", "children_left", "children_right", "missing_go_to_left",
                     "impurity", "n_node_samples", "weighted_n_node_samples"):
            setattr(self, name, getattr(forest, name)[a:b].copy())
        v = forest.value[a:b]
        k = forest.n_outputs
        K = v.shape[1] // k
        self.value = v.reshape(self.node_count, k, K).copy()
        self.n_outputs = k
        self.n_classes = np.full(k, K, dtype=np.intp)
        self.max_n_classes = K

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.children_left == TREE_LEAF))

    def _walk(self, X, on_step=None):
        """Leaf id (n) of every row of X (dense or sparse), calling on_step(rows, nodes) for each
        node visited. x <= threshold compares in float32, as the prediction kernel does."""
        if sp.issparse(X):
            X = X.toarray()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X: expected shape (n_samples, {self.n_features}), got {X.shape}")
        thr = self.threshold.astype(np.float32)
        node = np.zeros(X.shape[0], dtype=np.intp)
        active = np.arange(X.shape[0])
        while True:
            if on_step is not None:
                on_step(active, node[active])
            f = self.feature[node[active]]
            active = active[f >= 0]
            if not len(active):
                return node
            at = node[active]
            x = X[active, self.feature[at]]
            go_left = np.where(np.isnan(x), self.missing_go_to_left[at].astype(bool), x <= thr[at])
            node[active] = np.where(go_left, self.children_left[at], self.children_right[at])

    def apply(self, X) -> np.ndarray:
        """Leaf id reached by each row of X, (n,) intp."""
        return self._walk(X)

    def decision_path(self, X):
        """CSR indicator (n, node_count): the nodes each row passes through."""
        rows, nodes = [], []
        self._walk(X, lambda r, nd: (rows.append(r), nodes.append(nd)))
        n = np.asarray(X.shape[0])
        r = np.concatenate(rows) if rows else np.zeros(0, np.intp)
        c = np.concatenate(nodes) if nodes else np.zeros(0, np.intp)
        out = sp.csr_matrix((np.ones(len(r), dtype=np.intp), (r, c)), shape=(int(n), self.node_count))
        out.sort_indices()
        return out

    def predict(self, X) -> np.ndarray:
        return self.value[self.apply(X)]

    def compute_feature_importances(self, normalize=True) -> np.ndarray:
        out = np.zeros(self.n_features)
        internal = np.flatnonzero(self.feature >= 0)
        wi = self.weighted_n_node_samples * self.impurity
        gain = wi[internal] - wi[self.children_left[internal]] - wi[self.children_right[internal]]
        np.add.at(out, self.feature[internal], gain)
        out /= self.weighted_n_node_samples[0]
        if normalize and out.sum() > 0:
            out /= out.sum()
        return out
