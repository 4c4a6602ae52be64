"""The compact forest file: a fitted forgeml tree or forest estimator as flat arrays, no pickle.

Layout (little-endian), format version 1::

    0   8 bytes  magic b"\\x89FGMLFOR"      (the high byte catches text-mode mangling)
    8   u32      format version (1)
    12  u32      CRC-32 of the header text
    16  u64      header length H in bytes
    24  u64      data offset D (a multiple of 64, >= 40 + H)
    32  u64      data length L (the file is at least D + L bytes)
    40  H bytes  header: UTF-8 JSON {"format": "forgeml-forest", "class": name of the estimator,
                 "attrs": its fitted state, "forest": {"n_features": d, "arrays": {field: index}},
                 "arrays": [{"dtype", "shape", "offset", "nbytes"}, ...]}
    D   L bytes  the arrays, C order, each at a 64-byte aligned offset from D

The forest is stored as the prediction kernels' node array (N, 4) int32 {feature | nan_left << 30
(-1 at a leaf), threshold float32 bits, left, right (global ids)} plus values (N, k) float64,
impurity, n_node_samples, weighted_n_node_samples, missing_go_to_left and the tree offsets and
depths, and the prediction layout (compact_nodes (m, 3) int32 {feature | nan_left << 30, threshold,
right child from the tree root}, compact_source, compact_roots): 65 + 8k bytes a node in all, about
scikit-learn's 64 + 8k. Thresholds are float32 values
(bin edges), so the float64 ``threshold`` a tree reports is rebuilt exactly.

Loading maps the file (or reads it with ``mmap=False``) and checks, in time independent of the
forest's size, the fixed header, the header CRC, every array's dtype, shape and bounds and the
forest's shapes; each node array (the prediction layout, stored as is; the flat one) is checked
in one pass when first used, before any kernel or NumPy walk reads it (each root and child in
range, each child after its parent, each feature < n_features), so a corrupt file never crashes
or hangs. Any failure raises :class:`ForestFileError` naming the file. The estimator class is looked up in a fixed list
(nothing is imported by name)."""

from __future__ import annotations

import json
import math
import mmap as _mmap
import os
import struct
import zlib

import numpy as np

MAGIC = b"\x89FGMLFOR"
VERSION = 1
_FIXED = struct.Struct("<8sIIQQQ")
_ALIGN = 64
_FOREST_FIELDS = (
    "nodes",
    "offsets",
    "depth",
    "value",
    "impurity",
    "n_node_samples",
    "weighted_n_node_samples",
    "missing_go_to_left",
)
_COMPACT_FIELDS = ("compact_nodes", "compact_source", "compact_roots")  # the prediction layout, as is
_DTYPES = {
    "compact_nodes": "<i4",
    "compact_source": "<i4",
    "compact_roots": "<i8",
    "offsets": "<i8",
    "depth": "<i4",
    "nodes": "<i4",
    "value": "<f8",
    "impurity": "<f8",
    "n_node_samples": "<i8",
    "weighted_n_node_samples": "<f8",
    "missing_go_to_left": "|u1",
}


class ForestFileError(ValueError):
    """A file that is not a valid compact forest file (or one written by a newer forgeml)."""


def _classes() -> dict:
    from ..ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
    from ._classes import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

    return {
        c.__name__: c
        for c in (
            RandomForestClassifier,
            RandomForestRegressor,
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            DecisionTreeClassifier,
            DecisionTreeRegressor,
            ExtraTreeClassifier,
            ExtraTreeRegressor,
        )
    }


# ---------------------------------------------------------------------------------------- save
class _Writer:
    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def array(self, a: np.ndarray) -> int:
        self.arrays.append(np.ascontiguousarray(a))
        return len(self.arrays) - 1

    def encode(self, v, where: str):
        """JSON for an attribute value; arrays go to the array table."""
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, np.generic):
            return v
        if isinstance(v, np.generic):
            return {"$scalar": v.dtype.str, "v": v.item()} if v.dtype.kind in "biuf" else self.encode(v.item(), where)
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in "biufU":
                raise TypeError(
                    f"{where}: a {v.dtype} array can't be stored in a compact forest file "
                    "(pickle the estimator instead)"
                )
            return {"$array": self.array(v)}
        if isinstance(v, (list, tuple)):
            return {"$list" if isinstance(v, list) else "$tuple": [self.encode(x, where) for x in v]}
        if isinstance(v, dict):
            return {"$dict": [[self.encode(k, where), self.encode(x, where)] for k, x in v.items()]}
        raise TypeError(
            f"{where}: a {type(v).__name__} can't be stored in a compact forest file (pickle the estimator instead)"
        )


def save(est, path) -> None:
    """Writes the fitted tree or forest estimator `est` to `path` in the compact forest format."""
    name = type(est).__name__
    if _classes().get(name) is not type(est) or "_forest" not in est.__dict__:
        raise TypeError(f"save: expected a fitted forgeml tree or forest estimator, got {type(est).__name__}")
    forest = est._forest
    w = _Writer()
    from ._tree import Tree

    # tree_ (a decision tree's view of its one tree) is rebuilt from the forest on load
    attrs = {k: w.encode(v, k) for k, v in est.__dict__.items() if k != "_forest" and not isinstance(v, Tree)}
    views = [k for k, v in est.__dict__.items() if isinstance(v, Tree)]
    fields = {f: w.array(np.asarray(getattr(forest, f), dtype=_DTYPES[f])) for f in _FOREST_FIELDS}
    fields.update(zip(_COMPACT_FIELDS, map(w.array, forest._compact.arrays())))
    table: list[dict] = []
    offset = 0
    for a in w.arrays:
        table.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes})
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    header = json.dumps(
        {
            "format": "forgeml-forest",
            "class": name,
            "attrs": attrs,
            "forest": {
                "n_features": int(forest.n_features),
                "n_outputs": int(forest.n_outputs),
                "arrays": fields,
                "tree_views": views,
            },
            "arrays": table,
        }
    ).encode()
    data_offset = -(-(_FIXED.size + len(header)) // _ALIGN) * _ALIGN
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:  # written aside and renamed: a reader never sees half a file
        fh.write(_FIXED.pack(MAGIC, VERSION, zlib.crc32(header), len(header), data_offset, offset))
        fh.write(header)
        for a, entry in zip(w.arrays, table):
            fh.seek(data_offset + entry["offset"])
            a.tofile(fh)
        fh.truncate(data_offset + offset)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- load
def load(path, mmap: bool = True):
    """The estimator saved at `path`. mmap=True maps the file read-only (the arrays are views of
    the mapping, shared between processes); mmap=False reads it into memory."""
    path = os.fspath(path)

    def bad(why: str) -> ForestFileError:
        return ForestFileError(f"{path}: not a valid forgeml forest file: {why}")

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < _FIXED.size:
            raise bad(f"{size} bytes, shorter than the {_FIXED.size}-byte header")
        buf: _mmap.mmap | bytearray
        if mmap:
            buf = _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ)
        else:
            buf = bytearray(size)
            if fh.readinto(buf) != size:
                raise bad("the file changed while it was read")
    magic, version, crc, hlen, data_offset, data_len = _FIXED.unpack_from(buf, 0)
    if magic != MAGIC:
        raise bad("wrong magic bytes")
    if version > VERSION or version < 1:
        raise bad(
            f"format version {version}; this forgeml reads version {VERSION}"
            + (" (upgrade forgeml)" if version > VERSION else "")
        )
    if _FIXED.size + hlen > size:
        raise bad(f"truncated ({size} bytes; the header alone needs {_FIXED.size + hlen})")
    raw = bytes(buf[_FIXED.size : _FIXED.size + hlen])
    if zlib.crc32(raw) != crc:
        raise bad("header checksum mismatch (the file is corrupt)")
    if data_offset % _ALIGN or data_offset < _FIXED.size + hlen or data_offset + data_len > size:
        raise bad(f"truncated or corrupt (data at {data_offset}, {data_len} bytes; the file has {size})")
    try:
        header = json.loads(raw)
        cls = _classes().get(header["class"]) if header.get("format") == "forgeml-forest" else None
        if cls is None:
            raise bad(f"unknown format or class {header.get('format')!r} / {header.get('class')!r}")
        arrays = [_array(buf, data_offset, data_len, e) for e in header["arrays"]]
        est = cls.__new__(cls)
        est.__dict__.update({k: _decode(v, arrays) for k, v in header["attrs"].items()})
        fields = {f: arrays[i] for f, i in header["forest"]["arrays"].items()}
        forest = _forest(fields, int(header["forest"]["n_features"]), path)
        forest.n_outputs = int(header["forest"].get("n_outputs", 1))
        if forest.n_outputs < 1 or fields["value"].shape[1] % forest.n_outputs:
            raise ValueError(f"n_outputs {forest.n_outputs} does not divide the value width")
    except ForestFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise bad(f"{type(e).__name__}: {e}") from e
    est._forest = forest
    for name in header["forest"].get("tree_views", []):
        if name != "tree_":
            raise bad(f"unknown tree view {name!r}")
        est.tree_ = forest.tree(0)
    return est


def _array(buf, data_offset: int, data_len: int, e: dict) -> np.ndarray:
    dtype = np.dtype(e["dtype"])
    shape = tuple(int(s) for s in e["shape"])
    if dtype.kind not in "biufU" or dtype.hasobject or any(s < 0 for s in shape):
        raise ValueError(f"bad array entry {e}")
    nbytes = math.prod(shape) * dtype.itemsize
    off = int(e["offset"])
    if nbytes != e["nbytes"] or off < 0 or off % _ALIGN or off + nbytes > data_len:
        raise ValueError(f"array entry {e} lies outside the data ({data_len} bytes)")
    a = np.frombuffer(
        buf, dtype=dtype, count=nbytes // dtype.itemsize if dtype.itemsize else 0, offset=data_offset + off
    )
    return a.reshape(shape)


def _decode(v, arrays):
    if isinstance(v, dict):
        if "$array" in v:
            return arrays[v["$array"]]
        if "$scalar" in v:
            return np.dtype(v["$scalar"]).type(v["v"])
        if "$list" in v:
            return [_decode(x, arrays) for x in v["$list"]]
        if "$tuple" in v:
            return tuple(_decode(x, arrays) for x in v["$tuple"])
        if "$dict" in v:
            return {_decode(k, arrays): _decode(x, arrays) for k, x in v["$dict"]}
        raise ValueError(f"unknown attribute encoding {sorted(v)}")
    return v


def _forest(fields: dict, n_features: int, path: str):
    from ._tree import Forest

    for f in _FOREST_FIELDS + _COMPACT_FIELDS:
        if f not in fields or fields[f].dtype != np.dtype(_DTYPES[f]):
            raise ValueError(f"forest field {f!r} missing or not {_DTYPES[f]}")
    nodes, offsets = fields["nodes"], fields["offsets"]
    N = nodes.shape[0] if nodes.ndim == 2 else -1
    if nodes.ndim != 2 or nodes.shape[1] != 4:
        raise ValueError(f"nodes: expected (N, 4), got {nodes.shape}")
    T = len(offsets) - 1
    if offsets.ndim != 1 or T < 1 or offsets[0] != 0 or offsets[-1] != N or np.any(np.diff(offsets) < 1):
        raise ValueError("offsets: expected T + 1 increasing node offsets from 0 to the node count")
    value = fields["value"]
    if value.ndim != 2 or value.shape[0] != N or value.shape[1] < 1:
        raise ValueError(f"value: expected ({N}, k), got {value.shape}")
    for f in ("impurity", "n_node_samples", "weighted_n_node_samples", "missing_go_to_left"):
        if fields[f].shape != (N,):
            raise ValueError(f"{f}: expected ({N},), got {fields[f].shape}")
    if fields["depth"].shape != (T,):
        raise ValueError(f"depth: expected ({T},), got {fields['depth'].shape}")
    forest = Forest.__new__(Forest)
    forest.__dict__.update({f: fields[f] for f in _FOREST_FIELDS})
    forest.n_features = n_features
    forest.roots = np.ascontiguousarray(offsets[:-1])
    # The node arrays are checked in one pass each when first used (the prediction layout by the
    # first predict, the flat one by apply / tree_ / export), so that loading costs no time per node.
    forest.__dict__.update(_saved_compact=tuple(fields[f] for f in _COMPACT_FIELDS), _source=path)
    return forest
