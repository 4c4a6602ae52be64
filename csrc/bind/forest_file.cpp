// forgeml._cpu.forest_file_map / forest_file_load: map a compact forest file
// (python/forgeml/tree/_format.py) in one call. On a cold cache (the bench's idle pause before
// every sample) each Python-level step of a load costs 10-40 us whatever it computes: os.open,
// mmap.mmap, struct, zlib, every np.ndarray view, a pybind11 class instance. So the load's fixed
// part is here, in raw CPython + NumPy C API calls: open, fstat, mmap, close, the header's CRC,
// every check of the fixed fields and the forest's array table, and the forest's array views.
#define PY_SSIZE_T_CLEAN  // Py_BuildValue's "y#" takes a Py_ssize_t length
#include <fcntl.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "bind/registry.h"

namespace py = pybind11;

namespace {

using api_t = py::detail::npy_api;
using npy_intp = Py_intptr_t;  // NumPy's index type (pybind11's npy_api takes Py_intptr_t)

// CRC-32 (the zlib / PNG polynomial, reflected), as zlib.crc32 computes it.
uint32_t crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int b = 0; b < 8; ++b) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

template <class T>
T read(const uint8_t* p) {  // little-endian, as the file stores it (the hosts forgeml builds for)
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

const uint8_t kEmpty = 0;  // what an empty file's array points at

void unmap(PyObject* capsule) {  // the mapping's owner: unmapped when the last view goes
  const auto size = reinterpret_cast<size_t>(PyCapsule_GetContext(capsule));
  if (size) munmap(PyCapsule_GetPointer(capsule, "forgeml.file_mapping"), size);
}

// The file at path mapped read-only: its owner (a capsule; nullptr with a Python error set). With
// head, its first head_cap bytes are also read into head (*head_len of them): reading the header
// from there costs a pread instead of a page fault of the fresh mapping (~20 us cold in a VM).
PyObject* map_path(PyObject* path, const uint8_t** data, size_t* size, uint8_t* head = nullptr, size_t head_cap = 0,
                   size_t* head_len = nullptr) {
  PyObject* name = nullptr;  // str, bytes or os.PathLike -> the file system's bytes
  if (!PyUnicode_FSConverter(path, &name)) return nullptr;
  const int fd = ::open(PyBytes_AS_STRING(name), O_RDONLY | O_CLOEXEC);
  Py_DECREF(name);
  if (fd < 0) return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
  struct stat st;
  void* p = nullptr;
  size_t n = 0;
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (stat_ok) {
    n = static_cast<size_t>(st.st_size);
    p = n ? ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0) : nullptr;
    if (head && p != MAP_FAILED) {
      const ssize_t got = ::pread(fd, head, head_cap, 0);
      *head_len = got > 0 ? static_cast<size_t>(got) : 0;
    }
  }
  const int err = errno;
  ::close(fd);
  if (!stat_ok || p == MAP_FAILED || (n && !p)) {
    errno = err;
    return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
  }
  if (!n) p = const_cast<uint8_t*>(&kEmpty);
  PyObject* owner = PyCapsule_New(p, "forgeml.file_mapping", unmap);
  if (!owner || PyCapsule_SetContext(owner, reinterpret_cast<void*>(n))) {
    if (n) munmap(p, n);
    Py_XDECREF(owner);
    return nullptr;
  }
  *data = static_cast<const uint8_t*>(p), *size = n;
  return owner;
}

// A read-only C-ordered view of `owner`'s bytes at p (a new reference; nullptr on error).
PyObject* view(PyObject* owner, const uint8_t* p, int typenum, int nd, const npy_intp* dims) {
  const auto& api = api_t::get();
  PyObject* descr = api.PyArray_DescrFromType_(typenum);
  if (!descr) return nullptr;
  PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, const_cast<npy_intp*>(dims), nullptr,
                                          const_cast<uint8_t*>(p), api_t::NPY_ARRAY_C_CONTIGUOUS_, nullptr);
  if (!a) return nullptr;
  Py_INCREF(owner);
  if (api.PyArray_SetBaseObject_(a, owner) < 0) {
    Py_DECREF(a);
    return nullptr;
  }
  return a;
}

// The fixed header (_format._FIXED's 13 fields) plus the CRC-32 of bytes 16 .. E, E = 80 + 24 A + J
// (None where E lies past the end); None under 80 bytes.
PyObject* header_tuple(const uint8_t* p, size_t size) {
  if (size < 80) Py_RETURN_NONE;
  const uint64_t A = read<uint64_t>(p + 64), J = read<uint64_t>(p + 72);
  PyObject* crc = nullptr;
  if (A <= size / 24 && J <= size && 80 + 24 * A + J <= size) {
    crc = PyLong_FromUnsignedLong(crc32(p + 16, 80 + 24 * A + J - 16));
  } else {  // (Py_NewRef is Python >= 3.10)
    Py_INCREF(Py_None);
    crc = Py_None;
  }
  if (!crc) return nullptr;
  return Py_BuildValue("(y#IIKKIIIIKKKKN)", reinterpret_cast<const char*>(p), Py_ssize_t{8}, read<uint32_t>(p + 8),
                       read<uint32_t>(p + 12), read<uint64_t>(p + 16), read<uint64_t>(p + 24), read<uint32_t>(p + 32),
                       read<uint32_t>(p + 36), read<uint32_t>(p + 40), read<uint32_t>(p + 44), read<uint64_t>(p + 48),
                       read<uint64_t>(p + 56), A, J, crc);
}

// (memoryview of the file's bytes, header_tuple): ops.tree_file_map, and load's slow path.
PyObject* map_result(PyObject* owner, const uint8_t* p, size_t size) {
  const npy_intp dims[1] = {static_cast<npy_intp>(size)};
  PyObject* bytes = view(owner, p, api_t::NPY_UBYTE_, 1, dims);
  if (!bytes) return nullptr;
  PyObject* mv = PyMemoryView_FromObject(bytes);
  Py_DECREF(bytes);
  if (!mv) return nullptr;
  PyObject* header = header_tuple(p, size);
  if (!header) {
    Py_DECREF(mv);
    return nullptr;
  }
  return Py_BuildValue("(NN)", mv, header);
}

PyObject* file_map(PyObject*, PyObject* path) {
  const uint8_t* p = nullptr;
  size_t size = 0;
  PyObject* owner = map_path(path, &p, &size);
  if (!owner) return nullptr;
  PyObject* r = map_result(owner, p, size);
  Py_DECREF(owner);
  return r;
}

// The forest's arrays of a version 2 / 3 file, in the table's order (_format._FOREST, then
// compact_top): dtype code as the table stores it, NumPy type, item size.
struct ForestArray {
  char code[8];
  int typenum;
  int itemsize;
};

// What load checks of a version 2 / 3 file before it makes a view (_format.load's slow path
// checks the same and names what failed): false sends the file there.
struct Layout {
  uint32_t code, n_features, n_outputs, k;
  uint64_t data_offset, data_len, T, N, A, J, end, top_width;
  int n_forest;
  std::array<uint64_t, 11> off;  // each forest array's offset from the data
};

bool forest_layout(const uint8_t* p, size_t size, const std::array<ForestArray, 11>& arrays, Layout& l) {
  using u128 = unsigned __int128;
  if (size < 80 || std::memcmp(p,
                               "\x89"
                               "FGMLFOR",
                               8) != 0)
    return false;
  const uint32_t version = read<uint32_t>(p + 8);
  if (version != 2 && version != 3) return false;
  l.data_offset = read<uint64_t>(p + 16), l.data_len = read<uint64_t>(p + 24);
  l.code = read<uint32_t>(p + 32), l.n_features = read<uint32_t>(p + 36);
  l.n_outputs = read<uint32_t>(p + 40), l.k = read<uint32_t>(p + 44);
  l.T = read<uint64_t>(p + 48), l.N = read<uint64_t>(p + 56), l.A = read<uint64_t>(p + 64),
  l.J = read<uint64_t>(p + 72);
  if (l.A > size / 24 || l.J > size || 80 + 24 * l.A + l.J > size) return false;
  l.end = 80 + 24 * l.A + l.J;
  if (crc32(p + 16, l.end - 16) != read<uint32_t>(p + 12)) return false;
  if (l.data_offset % 64 || l.data_offset < l.end || l.data_len > size || l.data_offset > size - l.data_len)
    return false;
  l.n_forest = version == 2 ? 10 : 11;
  if (l.code >= 8 || l.A < static_cast<uint64_t>(l.n_forest) || l.T < 1 || l.N < l.T || l.N >= (1ull << 31) - 1 ||
      l.k < 1 || l.n_outputs < 1 || l.k % l.n_outputs)
    return false;
  const uint64_t T = l.T, N = l.N;
  const u128 counts[10] = {u128{N} * 3, N, T, T + 1, T, u128{N} * l.k, N, N, N, N};
  l.top_width = 0;
  for (int i = 0; i < l.n_forest; ++i) {
    const uint8_t* e = p + 80 + 24 * i;
    const uint64_t off = read<uint64_t>(e + 8), nbytes = read<uint64_t>(e + 16);
    const auto& a = arrays[i];
    u128 count;
    if (i < 10) {
      count = counts[i];
    } else {  // compact_top (T, W): W from the size, one of the top blocks' widths
      l.top_width = nbytes / (4 * T);
      if (l.top_width != 24 && l.top_width != 208 && l.top_width != 1680) return false;
      count = u128{T} * l.top_width;
    }
    if (std::memcmp(e, a.code, 8) != 0 || count * a.itemsize != nbytes || off % 64 || nbytes > l.data_len ||
        off > l.data_len - nbytes)
      return false;
    l.off[i] = off;
  }
  return true;
}

// An attribute array's table entry e: a read-only 1-D view of its bytes where its dtype is a plain
// little-endian number and it lies inside the data (the common case: load reshapes it, no NumPy
// dtype parse), else (dtype code, offset, length) for load to check and view.
PyObject* attribute_entry(PyObject* owner, const uint8_t* p, const Layout& l, const uint8_t* e) {
  static const struct {
    char code[8];
    int typenum, itemsize;
  } plain[] = {
      {"|b1", api_t::NPY_BOOL_, 1},   {"|i1", api_t::NPY_INT8_, 1},   {"|u1", api_t::NPY_UINT8_, 1},
      {"<i2", api_t::NPY_INT16_, 2},  {"<u2", api_t::NPY_UINT16_, 2}, {"<i4", api_t::NPY_INT32_, 4},
      {"<u4", api_t::NPY_UINT32_, 4}, {"<i8", api_t::NPY_INT64_, 8},  {"<u8", api_t::NPY_UINT64_, 8},
      {"<f4", api_t::NPY_FLOAT_, 4},  {"<f8", api_t::NPY_DOUBLE_, 8},
  };
  const uint64_t off = read<uint64_t>(e + 8), nbytes = read<uint64_t>(e + 16);
  for (const auto& t : plain)
    if (std::memcmp(e, t.code, 8) == 0 && nbytes % t.itemsize == 0 && off % 64 == 0 && nbytes <= l.data_len &&
        off <= l.data_len - nbytes) {
      const npy_intp dims[1] = {static_cast<npy_intp>(nbytes / t.itemsize)};
      return view(owner, p + l.data_offset + off, t.typenum, 1, dims);
    }
  return Py_BuildValue("(y#KK)", reinterpret_cast<const char*>(e), Py_ssize_t{8}, off, nbytes);
}

// forest_file_load(path): a version 2 / 3 file whose header, CRC and forest table check out gives
// (bytes, class code, n_features, n_outputs, data offset, data length, attribute text, table,
// forest views): bytes the whole file as a read-only uint8 array, table per array None for the
// forest's and attribute_entry for the rest, the views read-only; anything else
// gives forest_file_map's (memoryview, header) for load's checks to name what is wrong.
PyObject* file_load(PyObject*, PyObject* path) {
  static const std::array<ForestArray, 11> arrays = {{
      {"<i4", api_t::NPY_INT32_, 4},   // compact_nodes
      {"<i4", api_t::NPY_INT32_, 4},   // compact_source
      {"<i8", api_t::NPY_INT64_, 8},   // compact_roots
      {"<i8", api_t::NPY_INT64_, 8},   // offsets
      {"<i4", api_t::NPY_INT32_, 4},   // depth
      {"<f8", api_t::NPY_DOUBLE_, 8},  // value
      {"<f8", api_t::NPY_DOUBLE_, 8},  // impurity
      {"<i8", api_t::NPY_INT64_, 8},   // n_node_samples
      {"<f8", api_t::NPY_DOUBLE_, 8},  // weighted_n_node_samples
      {"|u1", api_t::NPY_UBYTE_, 1},   // missing_go_to_left
      {"<i4", api_t::NPY_INT32_, 4},   // compact_top
  }};
  const uint8_t* p = nullptr;
  size_t size = 0, head_len = 0;
  alignas(8) uint8_t head[4096];
  PyObject* owner = map_path(path, &p, &size, head, sizeof head, &head_len);
  if (!owner) return nullptr;
  // the header as read (the mapping's first page untouched), or the mapping where it is longer
  const uint8_t* h = p;
  if (head_len >= 80 && head_len <= size) {
    const uint64_t A = read<uint64_t>(head + 64), J = read<uint64_t>(head + 72);
    if (A <= head_len / 24 && J <= head_len && 80 + 24 * A + J <= head_len) h = head;
  }
  Layout l;
  PyObject* r = nullptr;
  if (!forest_layout(h, size, arrays, l)) {
    r = map_result(owner, p, size);
    Py_DECREF(owner);
    return r;
  }
  PyObject *text = nullptr, *table = nullptr, *views = nullptr, *bytes = nullptr;
  const uint8_t* data = p + l.data_offset;
  do {
    text = PyUnicode_DecodeUTF8(reinterpret_cast<const char*>(h + l.end - l.J), static_cast<Py_ssize_t>(l.J), "strict");
    if (!text) break;
    table = PyTuple_New(static_cast<Py_ssize_t>(l.A));
    if (!table) break;
    bool ok = true;
    for (uint64_t i = 0; i < l.A && ok; ++i) {
      const uint8_t* e = h + 80 + 24 * i;
      PyObject* entry = nullptr;
      if (i < static_cast<uint64_t>(l.n_forest)) {
        Py_INCREF(Py_None);
        entry = Py_None;
      } else {
        entry = attribute_entry(owner, p, l, e);
      }
      ok = entry != nullptr;
      if (ok) PyTuple_SET_ITEM(table, static_cast<Py_ssize_t>(i), entry);
    }
    if (!ok) break;
    const npy_intp T = static_cast<npy_intp>(l.T), N = static_cast<npy_intp>(l.N);
    const npy_intp shapes[11][2] = {{N, 3},
                                    {N},
                                    {T},
                                    {T + 1},
                                    {T},
                                    {N, static_cast<npy_intp>(l.k)},
                                    {N},
                                    {N},
                                    {N},
                                    {N},
                                    {T, static_cast<npy_intp>(l.top_width)}};
    const int nd[11] = {2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2};
    views = PyTuple_New(l.n_forest);
    if (!views) break;
    for (int i = 0; i < l.n_forest && ok; ++i) {
      PyObject* a = view(owner, data + l.off[i], arrays[i].typenum, nd[i], shapes[i]);
      ok = a != nullptr;
      if (ok) PyTuple_SET_ITEM(views, i, a);
    }
    if (!ok) break;
    const npy_intp dims[1] = {static_cast<npy_intp>(size)};
    bytes = view(owner, p, api_t::NPY_UBYTE_, 1, dims);
    if (!bytes) break;
    r = Py_BuildValue("(NIIIKKNNN)", bytes, l.code, l.n_features, l.n_outputs, l.data_offset, l.data_len, text, table,
                      views);
    bytes = text = table = views = nullptr;  // (stolen, even on failure)
  } while (false);
  if (!r && text == nullptr && table == nullptr && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
    PyErr_Clear();  // not UTF-8: load's checks say so
    r = map_result(owner, p, size);
  }
  Py_XDECREF(text);
  Py_XDECREF(table);
  Py_XDECREF(views);
  Py_XDECREF(bytes);
  Py_DECREF(owner);
  return r;
}

// forest_file_hugepages(view): asks for 2 MiB pages on the mapping a view of a loaded file lies in
// (madvise MADV_HUGEPAGE; a no-op for anything else, for files under 2 MiB and where the OS lacks
// it). A file not in the page cache is then read in 2 MiB folios and mapped with PMD entries: a
// cold 1-row walk touches ~20 pages instead of ~600 (tree_predict_profile.md round 9: 70-82 vs
// 99-113 us median). Called when the few-row predictor is first built, not by load: the syscall costs
// ~10-20 us cold, and a file saved by this forgeml is already in 2 MiB folios (_format._write).
PyObject* file_hugepages(PyObject*, PyObject* a) {
  const auto& api = api_t::get();
  if (!PyObject_TypeCheck(a, api.PyArray_Type_)) Py_RETURN_NONE;
  PyObject* base = py::detail::array_proxy(a)->base;
  if (base && PyCapsule_IsValid(base, "forgeml.file_mapping")) {
    const auto size = reinterpret_cast<size_t>(PyCapsule_GetContext(base));
#ifdef MADV_HUGEPAGE
    if (size >= (size_t{2} << 20)) ::madvise(PyCapsule_GetPointer(base, "forgeml.file_mapping"), size, MADV_HUGEPAGE);
#endif
  }
  Py_RETURN_NONE;
}

PyMethodDef map_def{"forest_file_map", file_map, METH_O,
                    "forest_file_map(path) -> (mapping, header): the file mapped read-only (a memoryview), and its "
                    "fixed header fields with the CRC-32 of the rest of the header (None: the file is under 80 "
                    "bytes / the header runs past its end)."};
PyMethodDef load_def{"forest_file_load", file_load, METH_O,
                     "forest_file_load(path): a version 2 / 3 compact forest file mapped read-only with its header "
                     "and forest table checked, as (bytes, class code, n_features, n_outputs, data offset, data "
                     "length, attribute text, table, forest views); anything else as forest_file_map's result."};

PyMethodDef hugepages_def{"forest_file_hugepages", file_hugepages, METH_O,
                          "forest_file_hugepages(view): madvise(MADV_HUGEPAGE) on the file mapping a view of a "
                          "loaded forest lies in (nothing for any other array or object)."};

forgeml::bind::Register reg{[](py::module_& m) {
  api_t::get();  // NumPy's C API, imported once here rather than in the first load
  for (PyMethodDef* def : {&map_def, &load_def, &hugepages_def}) {
    PyObject* f = PyCFunction_NewEx(def, nullptr, m.attr("__name__").ptr());
    if (!f) throw py::error_already_set();
    m.attr(def->ml_name) = py::reinterpret_steal<py::object>(f);
  }
}};

}  // namespace
