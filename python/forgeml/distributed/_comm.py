"""The MPI world (mpi4py), found lazily, and the few collectives training needs."""

from __future__ import annotations

import sys

import numpy as np

_state: dict = {}


def comm():
    """MPI.COMM_WORLD (a world of one process when not started by mpirun)."""
    c = _state.get("comm")
    if c is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError(
                "forgeml.distributed needs mpi4py and an MPI library: pip install 'forgeml[mpi]' "
                "(with Open MPI or MPICH installed)"
            ) from e
        c = _state["comm"] = MPI.COMM_WORLD
        _state["MPI"] = MPI
        if c.Get_size() > 1:
            _abort_on_uncaught_exception(c)
    return c


def _abort_on_uncaught_exception(c):
    """A rank that dies of an exception must take the job down: the others would wait forever in
    the next collective (as ``python -m mpi4py`` does)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        c.Abort(1)

    sys.excepthook = hook


def rank() -> int:
    return comm().Get_rank()


def size() -> int:
    return comm().Get_size()


def is_root() -> bool:
    return rank() == 0


def _cuda_aware() -> bool:
    MPI = _state["MPI"]
    try:
        return bool(MPI.Query_cuda_support())
    except (AttributeError, NotImplementedError):  # older MPI / mpi4py: assume host buffers only
        return False


def allreduce_mean(buf) -> None:
    """Average a float buffer across ranks, in place (one Allreduce). NumPy arrays, and CuPy arrays
    (passed directly to a CUDA-aware MPI, else staged through host memory)."""
    c = comm()
    n = c.Get_size()
    if n == 1:
        return
    MPI = _state["MPI"]
    if type(buf).__module__.split(".", 1)[0] == "cupy" and not _cuda_aware():
        host = buf.get()
        c.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        host *= host.dtype.type(1.0 / n)
        buf.set(host)
        return
    if type(buf).__module__.split(".", 1)[0] == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()  # MPI reads the buffer outside the stream
    c.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    buf *= buf.dtype.type(1.0 / n)


def broadcast(buf, root: int = 0) -> None:
    """Copy root's buffer to every rank, in place."""
    c = comm()
    if c.Get_size() == 1:
        return
    if type(buf).__module__.split(".", 1)[0] == "cupy":
        host = buf.get()
        c.Bcast(host, root=root)
        buf.set(host)
    else:
        c.Bcast(buf, root=root)


def shard(*arrays):
    """This rank's rows of each array: a[rank::size].

    Strided rows make the ranks' b-row batches (without shuffling) add up to exactly the global
    batches of b * size consecutive rows that one process would take. Raises on every rank when
    some rank would get no rows, or the arrays' lengths differ."""
    if not arrays:
        raise ValueError("shard: give at least one array")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"shard: array {i} has {len(a)} rows, array 0 has {n}")
    c = comm()
    r, s = c.Get_rank(), c.Get_size()
    if n < s:
        raise ValueError(f"shard: {n} rows cannot feed {s} ranks: rank {n if n < s else s - 1} would have no data")
    out = tuple(a[r::s] for a in arrays)
    return out[0] if len(out) == 1 else out


def gather_ints(value: int) -> list[int]:
    return [int(v) for v in comm().allgather(int(value))]


def mean_of(values: np.ndarray) -> np.ndarray:
    """Element-wise mean over ranks of a float64 vector (one Allreduce)."""
    values = np.ascontiguousarray(values, dtype=np.float64).copy()
    allreduce_mean(values)
    return values
