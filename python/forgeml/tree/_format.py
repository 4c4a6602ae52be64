"""The compact forest file: a fitted forgeml tree or forest estimator as flat arrays, no pickle.

Layout (little-endian), format version 3::

    0   8 bytes  magic b"\\x89FGMLFOR"      (the high byte catches text-mode mangling)
    8   u32      format version (3)
    12  u32      CRC-32 of bytes 16 .. E (the rest of the header: fixed fields, table, attributes)
    16  u64      data offset D (a multiple of 64, >= E)
    24  u64      data length L (the file is at least D + L bytes)
    32  u32      estimator class: index in CLASS_NAMES
    36  u32      n_features d
    40  u32      n_outputs
    44  u32      k, the width of the value array (n_outputs * classes, or n_outputs)
    48  u64      T trees
    56  u64      N nodes (all trees)
    64  u64      A arrays in the table (>= 11)
    72  u64      J bytes of attribute text
    80  A x 24   array table: {dtype 8 bytes (numpy's ``dtype.str``, NUL-padded), u64 offset from D
                 (a multiple of 64), u64 length in bytes}
    80 + 24A     J bytes: the estimator's attributes, UTF-8 JSON (its parameters and fitted state; an
                 array is {"$array": index in the table, "shape": [...]}); E = 80 + 24A + J
    D   L bytes  the arrays, C order, each at its table offset (save writes compact_top,
                 compact_nodes and value first, in one writev: see _write)

The first eleven arrays are the forest, in this order, their shapes fixed by T, N and k::

    compact_nodes (N, 3) <i4    the prediction layout: per node {feature | nan_left << 30,
                                threshold float32 bits, right child from the tree's root}; each
                                tree depth-first (the left child is the next node), a leaf's right
                                child is itself and its first word its row of value
    compact_source (N,) <i4     per compact node: its node id (row of value and the arrays below)
    compact_roots (T,) <i8      per tree: its root in compact_nodes (trees are contiguous)
    offsets (T + 1,) <i8        tree t owns node ids offsets[t] .. offsets[t + 1]
    depth (T,) <i4, value (N, k) <f8, impurity (N,) <f8, n_node_samples (N,) <i8,
    weighted_n_node_samples (N,) <f8, missing_go_to_left (N,) |u1     scikit-learn's tree_ fields
    compact_top (T, W) <i4      per tree, its top block: its first 6 levels breadth-first in
                                64-byte groups of 3 levels, then where the walk goes on in
                                compact_nodes (W = 208; 24 or 1680 words for 3 or 9 levels are read
                                too; layout in csrc/cpu/tree/compact_rows.h, top_words)

41 + 8k bytes a node in all, plus 832 bytes a tree (scikit-learn's pickle: about 64 + 8k a node). The flat arrays a tree reports
(feature, threshold, children_left, children_right) are rebuilt from the prediction layout when
first used; thresholds are float32 values (bin edges), so the float64 ``threshold`` is exact.
Version 2 files (the same without compact_top, each leaf's first word 0) and version 1 files (a
JSON header; the flat node array stored beside the prediction layout) still load; their few-row
walk starts at each root.

Loading maps the file (or reads it with ``mmap=False``) and checks, in time independent of the
forest's size, the fixed header, the header CRC and every array's dtype, size and bounds; it makes
no per-tree object. A mapped version 2 / 3 file is checked and viewed in one C call
(ops.tree_file_load: the header is read with pread, so loading touches no page of the mapping);
the same checks in Python (``_checked``) name what failed for any other file. Predicting a few rows walks the
mapped top blocks, then the prediction layout, directly, checking each entry it reads; anything else checks a node array in one pass when first using it (each root
and child in range, each child after its parent, each node id inside its tree, each feature <
n_features). So a damaged file never crashes or hangs: any failure raises :class:`ForestFileError`
naming the file. The estimator class comes from a fixed list (nothing is imported by name)."""

from __future__ import annotations

import json
import math
import os
import struct
import zlib

import numpy as np

from .. import ops
from ._tree import _TOP_LEVELS, Forest, Tree

MAGIC = b"\x89FGMLFOR"
VERSION = 3
CLASS_NAMES = (  # the class code is the index: append only
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
)
_FIXED = struct.Struct("<8sIIQQIIIIQQQQ")
_ENTRY = struct.Struct("<8sQQ")
_ALIGN = 64
_FOREST: tuple[tuple[str, np.dtype], ...] = (  # the first arrays of a version 2 file: (name, dtype)
    ("compact_nodes", np.dtype("<i4")),
    ("compact_source", np.dtype("<i4")),
    ("compact_roots", np.dtype("<i8")),
    ("offsets", np.dtype("<i8")),
    ("depth", np.dtype("<i4")),
    ("value", np.dtype("<f8")),
    ("impurity", np.dtype("<f8")),
    ("n_node_samples", np.dtype("<i8")),
    ("weighted_n_node_samples", np.dtype("<f8")),
    ("missing_go_to_left", np.dtype("|u1")),
)
_TOP = ("compact_top", np.dtype("<i4"))  # version 3's eleventh forest array
_WALK_FIRST = (10, 0, 5)  # compact_top, compact_nodes, value: what a few-row walk reads, first in the file
_TOP_WIDTHS = {24: 3, 208: 6, 1680: 9}  # words a tree's top block takes: its levels
_DTYPES = dict(_FOREST)
_CODES = {name: dtype.str.encode().ljust(8, b"\0") for name, dtype in (*_FOREST, _TOP)}  # as the table stores them
_COMPACT = ("compact_nodes", "compact_source", "compact_roots")
_V1_FIXED = struct.Struct("<8sIIQQQ")
_JSON = json.JSONDecoder()


class ForestFileError(ValueError):
    """A file that is not a valid compact forest file (or one written by a newer forgeml)."""


_classes_cache: dict = {}


def _classes() -> dict:
    if not _classes_cache:
        from ..ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
        from ._classes import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

        found = {
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
        _classes_cache.update((name, found[name]) for name in CLASS_NAMES)
    return _classes_cache


def _shapes(T: int, N: int, k: int) -> dict:
    return {
        "compact_nodes": (N, 3),
        "compact_source": (N,),
        "compact_roots": (T,),
        "offsets": (T + 1,),
        "depth": (T,),
        "value": (N, k),
        "impurity": (N,),
        "n_node_samples": (N,),
        "weighted_n_node_samples": (N,),
        "missing_go_to_left": (N,),
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
            if v.dtype.kind not in "biufU" or len(v.dtype.str) > 8:
                raise TypeError(
                    f"{where}: a {v.dtype} array can't be stored in a compact forest file "
                    "(pickle the estimator instead)"
                )
            return {"$array": self.array(v), "shape": list(v.shape)}
        if isinstance(v, (list, tuple)):
            return {"$list" if isinstance(v, list) else "$tuple": [self.encode(x, where) for x in v]}
        if isinstance(v, dict):
            return {"$dict": [[self.encode(k, where), self.encode(x, where)] for k, x in v.items()]}
        raise TypeError(
            f"{where}: a {type(v).__name__} can't be stored in a compact forest file (pickle the estimator instead)"
        )


def save(est, path) -> None:
    """Writes the fitted tree or forest estimator `est` to `path` in the compact forest format.
    The file is written beside `path` and renamed over it when complete, so `path` holds either
    the old file or the new one, never half of one; on any failure the partial file is removed."""
    name = type(est).__name__
    if _classes().get(name) is not type(est) or "_forest" not in est.__dict__:
        raise TypeError(f"save: expected a fitted forgeml tree or forest estimator, got {type(est).__name__}")
    forest = est._forest
    w = _Writer()
    stored = dict(zip(_COMPACT, forest._compact.arrays()))
    stored["compact_nodes"], stored["compact_top"] = ops.tree_compact_top_arrays(forest._compact, _TOP_LEVELS)
    for field, dtype in (*_FOREST, _TOP):
        w.array(np.asarray(stored[field] if field in stored else getattr(forest, field), dtype=dtype))

    # tree_ (a decision tree's view of its one tree) is rebuilt from the forest on first use
    attrs = {k: w.encode(v, k) for k, v in est.__dict__.items() if k != "_forest" and not isinstance(v, Tree)}
    text = json.dumps(attrs, separators=(",", ":")).encode()
    order = [*_WALK_FIRST, *(i for i in range(len(w.arrays)) if i not in _WALK_FIRST)]
    offsets, offset = {}, 0
    for i in order:  # the file's order; the table keeps the arrays' order (readers go by offset)
        offsets[i] = offset
        offset += -(-w.arrays[i].nbytes // _ALIGN) * _ALIGN
    table = [_ENTRY.pack(a.dtype.str.encode(), offsets[i], a.nbytes) for i, a in enumerate(w.arrays)]
    n_trees, n_nodes, k = forest.n_trees, len(forest.value), forest.value.shape[1]
    end = _FIXED.size + _ENTRY.size * len(table) + len(text)
    data_offset = -(-end // _ALIGN) * _ALIGN
    fields = (data_offset, offset, CLASS_NAMES.index(name), forest.n_features, forest.n_outputs, k)
    rest = _FIXED.pack(MAGIC, VERSION, 0, *fields, n_trees, n_nodes, len(table), len(text))[16:]
    rest += b"".join(table) + text
    header = MAGIC + struct.pack("<II", VERSION, zlib.crc32(rest)) + rest
    _write_replacing(os.fspath(path), header, data_offset, [w.arrays[i] for i in order])


def _write_replacing(path: str, header: bytes, data_offset: int, arrays: list) -> None:
    """Writes the file beside `path` and renames it over `path` (a reader never sees half a file);
    on any failure the partial file is removed and the error raised."""
    tmp = f"{path}.tmp{os.getpid()}.{id(arrays):x}"
    try:
        with open(tmp, "wb") as fh:
            _write(fh, header, data_offset, arrays)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before it replaces the old file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write(fh, header: bytes, data_offset: int, arrays: list) -> None:
    """The header, then `arrays` (in the file's order) each padded to _ALIGN, in one writev where
    the OS has it: one write call lets the page cache hold every 2 MiB-aligned stretch of the file
    in one 2 MiB folio (Linux, ext4/xfs/tmpfs with large folios), so a mapping of it gets PMD-sized
    pages: a cold 1-row walk then takes ~20 TLB entries instead of ~600 (and a fresh mapping's
    first call ~40 faults instead of hundreds). Separate writes per array leave each array's ends
    in small folios."""
    pieces = [header, bytes(data_offset - len(header))]
    for a in arrays:
        pieces += [a.reshape(-1).view(np.uint8), bytes(-a.nbytes % _ALIGN)]
    parts = [memoryview(p).cast("B") for p in pieces if len(p)]
    writev = getattr(os, "writev", None)
    if writev is None:  # (Windows)
        for p in parts:
            fh.write(p)
        return
    fh.flush()
    fd = fh.fileno()
    while parts:  # a write may stop short (a signal, > 2 GB): go on from where it stopped
        n = writev(fd, parts[:1024])
        while parts and n >= len(parts[0]):
            n -= len(parts.pop(0))
        if n:
            parts[0] = parts[0][n:]


# ---------------------------------------------------------------------------------------- load
def load(path, mmap: bool = True):
    """The estimator saved at `path`. mmap=True maps the file read-only (the arrays are views of
    the mapping, shared between processes; nothing is read until used; saving over the path is
    safe, rewriting the file in place is not); mmap=False reads it into memory. A file that is not
    a valid compact forest file raises ForestFileError, here or when its damaged part is first
    used."""
    path = os.fspath(path)
    if mmap:  # one C call: open, fstat, mmap, close, the header's CRC and every check, the forest's views
        got = ops.tree_file_load(path)
        if len(got) == 9:  # a version 2 / 3 file whose header and forest table check out
            buf, code, n_features, n_outputs, data_offset, data_len, text, table, views = got
        else:  # anything else: checked here, naming what is wrong (or an old version)
            got = _checked(path, *got)
            if len(got) != 9:
                return got  # a version 1 file's estimator
            buf, code, n_features, n_outputs, data_offset, data_len, text, table, views = got
    else:
        got = _checked(path, *_read(path))
        if len(got) != 9:
            return got
        buf, code, n_features, n_outputs, data_offset, data_len, text, table, views = got
    try:
        try:  # (the JSON scanner itself: raw_decode is a Python frame around it)
            attrs, used = _JSON.scan_once(text, 0)  # type: ignore[attr-defined]
        except StopIteration as e:
            raise ValueError(f"the attributes are not JSON (at {e.value})") from None
        if used != len(text) or type(attrs) is not dict:
            raise ValueError("the attributes are not one JSON object")
        cls = (_classes_cache or _classes())[CLASS_NAMES[code]]
        est = cls.__new__(cls)
        n_forest = len(views)
        decode = (buf, data_offset, data_len, table, n_forest)
        for key, v in attrs.items():  # (a loop, not a comprehension, and a 1-D array inline: no frames)
            if type(v) is dict:
                i = v.get("$array")
                a = table[i] if type(i) is int and n_forest <= i < len(table) else None
                attrs[key] = a if isinstance(a, np.ndarray) and v["shape"] == [len(a)] else _decode(v, *decode)
        est.__dict__ = attrs
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise _bad(path, f"{type(e).__name__}: {e}") from e
    est._forest = _forest(views, n_features, n_outputs, path)
    return est


def _read(path: str) -> tuple:
    """(the file's bytes, its fixed header fields and header CRC as ops.tree_file_map gives them)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        buf = bytearray(os.fstat(fd).st_size)
        with open(fd, "rb", closefd=False) as fh:
            if fh.readinto(buf) != len(buf):
                raise _bad(path, "the file changed while it was read")
    finally:
        os.close(fd)
    fixed = None
    if len(buf) >= _FIXED.size:
        fixed = _FIXED.unpack_from(buf, 0)
        end = _FIXED.size + _ENTRY.size * fixed[11] + fixed[12]
        fixed += (zlib.crc32(buf[16:end]) if end <= len(buf) else None,)
    return buf, fixed


def _checked(path: str, buf, fixed) -> tuple:
    """What ops.tree_file_load gives for a valid version 2 / 3 file, from the file's bytes and fixed
    header (the same checks, each naming what failed), or a version 1 file's estimator."""
    size = len(buf)
    if fixed is None:  # (a version 1 header is shorter)
        if size < _V1_FIXED.size:
            raise _bad(path, f"{size} bytes, shorter than the {_V1_FIXED.size}-byte header")
        magic, version = struct.unpack_from("<8sI", buf, 0)
        if magic == MAGIC and version == 1:
            return _load_v1(buf, size, path, lambda why: _bad(path, why))
        fixed = (magic, version) + (0,) * 12
    magic, version, crc, data_offset, data_len, code, n_features, n_outputs, k, T, N, A, J, header_crc = fixed
    if magic != MAGIC:
        raise _bad(path, "wrong magic bytes")
    if version == 1:
        return _load_v1(buf, size, path, lambda why: _bad(path, why))
    if version not in (2, VERSION):
        raise _bad(
            path,
            f"format version {version}; this forgeml reads versions 1 to {VERSION}"
            + (" (upgrade forgeml)" if version > VERSION else ""),
        )
    if size < _FIXED.size:
        raise _bad(path, f"{size} bytes, shorter than the {_FIXED.size}-byte header")
    end = _FIXED.size + _ENTRY.size * A + J
    if header_crc is None:
        raise _bad(path, f"truncated ({size} bytes; the header alone needs {end})")
    if header_crc != crc:
        raise _bad(path, "header checksum mismatch (the file is corrupt)")
    if data_offset % _ALIGN or data_offset < end or data_offset + data_len > size:
        raise _bad(path, f"truncated or corrupt (data at {data_offset}, {data_len} bytes; the file has {size})")
    forest = _FOREST if version == 2 else (*_FOREST, _TOP)
    try:
        if code >= len(CLASS_NAMES) or A < len(forest) or T < 1 or N < T or N >= 2**31 - 1 or k < 1:
            raise ValueError(f"class {code}, {A} arrays, {T} trees, {N} nodes, value width {k}")
        if n_outputs < 1 or k % n_outputs:
            raise ValueError(f"n_outputs {n_outputs} does not divide the value width {k}")
        table = list(_ENTRY.iter_unpack(buf[_FIXED.size : _FIXED.size + _ENTRY.size * A]))
        shapes = _shapes(T, N, k)
        if version > 2:  # each tree's top block: its width gives its levels
            width = table[len(_FOREST)][2] // (4 * T)
            shapes["compact_top"] = (T, width if width in _TOP_WIDTHS else -1)
        views = []
        for (name, dtype), (code8, off, nbytes) in zip(forest, table):
            shape = shapes[name]
            if (
                code8 != _CODES[name]
                or nbytes != math.prod(shape) * dtype.itemsize
                or shape[-1] < 0
                or off % _ALIGN
                or off + nbytes > data_len
            ):
                raise ValueError(
                    f"{name}: expected {shape} {dtype.str} inside the data, got {code8!r} ({nbytes} "
                    f"bytes at {off} of {data_len})"
                )
            views.append(np.ndarray(shape, dtype, buf, data_offset + off))
        text = str(buf[end - J : end], "utf-8")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise _bad(path, f"{type(e).__name__}: {e}") from e
    return buf, code, n_features, n_outputs, data_offset, data_len, text, table, tuple(views)


def _bad(path: str, why: str) -> ForestFileError:
    return ForestFileError(f"{path}: not a valid forgeml forest file: {why}")


_dtypes: dict = {}  # table code -> dtype (parsing one costs ~50 us on a cold cache)


def _dtype(code: bytes) -> np.dtype:
    return np.dtype(code.rstrip(b"\0").decode("ascii"))


def _array(buf, data_offset: int, data_len: int, entry: tuple, shape: tuple, want=None) -> np.ndarray:
    """The array a table entry locates, of `shape` (and dtype `want` when given), checked to lie
    inside the data."""
    code, off, nbytes = entry
    dtype = want if want is not None else _dtypes.get(code) or _dtypes.setdefault(code, _dtype(code))
    if want is not None and code.rstrip(b"\0") != want.str.encode():
        raise ValueError(f"array of dtype {code!r}, expected {want.str}")
    if dtype.kind not in "biufU" or any(s < 0 for s in shape):
        raise ValueError(f"bad array {code!r} {shape}")
    count = math.prod(shape)
    if count * dtype.itemsize != nbytes or off % _ALIGN or off + nbytes > data_len:
        raise ValueError(f"array {shape} {dtype} ({nbytes} bytes at {off}) lies outside the data ({data_len} bytes)")
    return np.ndarray(shape, dtype, buf, data_offset + off)


def _decode(v, buf, data_offset, data_len, table, n_forest):
    if type(v) is not dict:
        return v
    if "$array" in v:
        i = int(v["$array"])
        if not n_forest <= i < len(table):
            raise ValueError(f"attribute array {i} is not in the table")
        entry, shape = table[i], tuple(map(int, v["shape"]))
        if type(entry) is np.ndarray:  # viewed by ops.tree_file_load (1-D, inside the data): shaped here (a
            # 1-D one's shape is checked in load)
            if min(shape, default=0) < 0 or math.prod(shape) != entry.size:
                raise ValueError(f"attribute array {i}: shape {shape} for its {entry.size} {entry.dtype} values")
            return entry if entry.shape == shape else entry.reshape(shape)
        return _array(buf, data_offset, data_len, entry, shape)
    if "$scalar" in v:
        return np.dtype(v["$scalar"]).type(v["v"])
    if "$list" in v:
        return [_decode(x, buf, data_offset, data_len, table, n_forest) for x in v["$list"]]
    if "$tuple" in v:
        return tuple(_decode(x, buf, data_offset, data_len, table, n_forest) for x in v["$tuple"])
    if "$dict" in v:
        return {
            _decode(key, buf, data_offset, data_len, table, n_forest): _decode(
                x, buf, data_offset, data_len, table, n_forest
            )
            for key, x in v["$dict"]
        }
    raise ValueError(f"unknown attribute encoding {sorted(v)}")


def _forest(views: tuple, n_features: int, n_outputs: int, path: str):
    """The Forest over the file's arrays (views in _FOREST's order, then compact_top in version 3):
    no pass over the nodes here (see _tree.Forest; offsets are checked on first use)."""
    forest = Forest.__new__(Forest)
    nodes, source, roots, offsets, depth, value, impurity, n_samples, weighted, nan_left, *top = views
    forest.__dict__.update(
        value=value,
        depth=depth,
        impurity=impurity,
        n_node_samples=n_samples,
        weighted_n_node_samples=weighted,
        missing_go_to_left=nan_left,
        n_features=n_features,
        n_outputs=n_outputs,
        _saved_compact=(nodes, source, roots),
        _saved_offsets=offsets,
        _source=path,
    )
    if top:  # version 3
        forest.__dict__["_saved_top"] = top[0]
    return forest


# ------------------------------------------------------------------------------- version 1 load
def _load_v1(buf, size: int, path: str, bad):
    """A version 1 file: the same fixed fields then a JSON header (class, attributes, the forest's
    array indices, the array table); its flat node array is not used (rebuilt as for version 2)."""
    _, _, crc, hlen, data_offset, data_len = _V1_FIXED.unpack_from(buf, 0)
    if _V1_FIXED.size + hlen > size:
        raise bad(f"truncated ({size} bytes; the header alone needs {_V1_FIXED.size + hlen})")
    raw = bytes(buf[_V1_FIXED.size : _V1_FIXED.size + hlen])
    if zlib.crc32(raw) != crc:
        raise bad("header checksum mismatch (the file is corrupt)")
    if data_offset % _ALIGN or data_offset < _V1_FIXED.size + hlen or data_offset + data_len > size:
        raise bad(f"truncated or corrupt (data at {data_offset}, {data_len} bytes; the file has {size})")
    try:
        header = json.loads(raw)
        cls = _classes().get(header["class"]) if header.get("format") == "forgeml-forest" else None
        if cls is None:
            raise bad(f"unknown format or class {header.get('format')!r} / {header.get('class')!r}")
        table = [
            (e["dtype"].encode(), int(e["offset"]), int(e["nbytes"]), tuple(int(s) for s in e["shape"]))
            for e in header["arrays"]
        ]

        def array(i, want=None):
            return _array(buf, data_offset, data_len, table[i][:3], table[i][3], want)

        def decode(v):
            if isinstance(v, dict):
                if "$array" in v:
                    return array(v["$array"])
                if "$scalar" in v:
                    return np.dtype(v["$scalar"]).type(v["v"])
                if "$list" in v:
                    return [decode(x) for x in v["$list"]]
                if "$tuple" in v:
                    return tuple(decode(x) for x in v["$tuple"])
                if "$dict" in v:
                    return {decode(k): decode(x) for k, x in v["$dict"]}
                raise ValueError(f"unknown attribute encoding {sorted(v)}")
            return v

        est = cls.__new__(cls)
        est.__dict__.update({k: decode(v) for k, v in header["attrs"].items()})
        index = header["forest"]["arrays"]
        fields = {f: array(index[f], _DTYPES[f]) for f, _ in _FOREST}  # (all viewed now: version 1 is rare)
        T, N = len(fields["offsets"]) - 1, len(fields["value"])
        k = fields["value"].shape[1] if fields["value"].ndim == 2 else 0
        for f, shape in _shapes(T, N, k).items():
            if fields[f].shape != shape or T < 1 or k < 1:
                raise ValueError(f"{f}: expected shape {shape}, got {fields[f].shape}")
        n_outputs = int(header["forest"].get("n_outputs", 1))
        if n_outputs < 1 or k % n_outputs:
            raise ValueError(f"n_outputs {n_outputs} does not divide the value width {k}")
        if any(name != "tree_" for name in header["forest"].get("tree_views", [])):
            raise ValueError("unknown tree view")
        n_features = int(header["forest"]["n_features"])
    except ForestFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise bad(f"{type(e).__name__}: {e}") from e
    est._forest = _forest(tuple(fields[f] for f, _ in _FOREST), n_features, n_outputs, path)
    return est
