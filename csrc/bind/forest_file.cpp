// forgeml._cpu.forest_file_map: maps a compact forest file (python/forgeml/tree/_format.py) and reads
// its fixed header in one call. On a cold cache every Python-level step of a load costs 10-40 us
// (os.open, mmap.mmap's fstat + dup + mmap, os.close, struct, zlib each touch their own code and
// a syscall): here it is open, fstat, mmap, close and a CRC-32 over the header, nothing else.
#include <fcntl.h>
#include <pybind11/pybind11.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "bind/registry.h"

namespace py = pybind11;

namespace {

// A read-only file mapping exposing the buffer protocol (NumPy views keep it alive); unmapped
// when the last view goes.
class Mapping {
 public:
  Mapping(void* data, size_t size) : data_(data), size_(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (size_) munmap(data_, size_);
  }
  const uint8_t* data() const { return size_ ? static_cast<const uint8_t*>(data_) : &empty_; }
  size_t size() const { return size_; }

 private:
  void* data_;
  size_t size_;
  static constexpr uint8_t empty_ = 0;  // what an empty mapping points at
};

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

// (memoryview of the mapping, header): header is None for a file under 80 bytes, else the fixed fields as
// _format._FIXED unpacks them plus the CRC-32 of bytes 16 .. E (E = 80 + 24 A + J), or None for
// that CRC when E lies past the end. An empty file maps to an empty mapping.
py::tuple map_file(py::object path) {
  PyObject* raw = nullptr;  // str, bytes or os.PathLike -> the file system's bytes
  if (!PyUnicode_FSConverter(path.ptr(), &raw)) throw py::error_already_set();
  const auto name = py::reinterpret_steal<py::object>(raw);
  const int fd = ::open(PyBytes_AS_STRING(raw), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path.ptr());
    throw py::error_already_set();
  }
  struct stat st;
  void* data = nullptr;
  size_t size = 0;
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (stat_ok) {
    size = static_cast<size_t>(st.st_size);
    data = size ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : nullptr;
  }
  const int err = errno;
  ::close(fd);
  if (!stat_ok || data == MAP_FAILED || (size && !data)) {
    errno = err;
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path.ptr());
    throw py::error_already_set();
  }
  auto owner = std::make_unique<Mapping>(data, size);
  const uint8_t* p = owner->data();
  py::object header = py::none();
  if (size >= 80) {
    const uint64_t A = read<uint64_t>(p + 64), J = read<uint64_t>(p + 72);
    py::object crc = py::none();
    if (A <= size / 24 && J <= size && 80 + 24 * A + J <= size) crc = py::int_(crc32(p + 16, 80 + 24 * A + J - 16));
    header = py::make_tuple(py::bytes(reinterpret_cast<const char*>(p), 8), read<uint32_t>(p + 8),
                            read<uint32_t>(p + 12), read<uint64_t>(p + 16), read<uint64_t>(p + 24),
                            read<uint32_t>(p + 32), read<uint32_t>(p + 36), read<uint32_t>(p + 40),
                            read<uint32_t>(p + 44), read<uint64_t>(p + 48), read<uint64_t>(p + 56), A, J, crc);
  }
  return py::make_tuple(py::memoryview(py::cast(std::move(owner))), header);
}

forgeml::bind::Register reg{[](py::module_& m) {
  py::class_<Mapping>(m, "FileMapping", py::buffer_protocol(), "A read-only mapping of a file (buffer protocol).")
      .def("__len__", &Mapping::size)
      .def_buffer([](Mapping& f) {
        return py::buffer_info(const_cast<uint8_t*>(f.data()), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(f.size())}, {py::ssize_t{1}}, /*readonly=*/true);
      });
  m.def("forest_file_map", &map_file, py::arg("path"),
        "(mapping, header) of a compact forest file: the file mapped read-only, and its fixed header fields with "
        "the CRC-32 of the rest of the header (None: the file is under 80 bytes / the header runs past its end).");
}};

}  // namespace
