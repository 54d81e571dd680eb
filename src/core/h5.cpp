#include "core/h5.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>

namespace bsp::h5 {

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = -1;
}

void quiet() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {

Handle check(hid_t id, const std::string& what) {
  if (id < 0) fail("{}", what);
  return Handle(id);
}
void check_status(herr_t s, const std::string& what) {
  if (s < 0) fail("{}", what);
}

// Object creation without modification times, so that the same model gives a
// byte-identical file.
Handle untimed_dcpl() {
  Handle p = check(H5Pcreate(H5P_DATASET_CREATE), "cannot create a property list");
  H5Pset_obj_track_times(p, 0);
  return p;
}
Handle untimed_gcpl() {
  Handle p = check(H5Pcreate(H5P_GROUP_CREATE), "cannot create a property list");
  H5Pset_obj_track_times(p, 0);
  return p;
}

Handle vlen_string_type() {
  Handle t = check(H5Tcopy(H5T_C_S1), "cannot create a string type");
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

template <typename T>
struct H5Type;
template <> struct H5Type<float> { static hid_t mem() { return H5T_NATIVE_FLOAT; } static hid_t file() { return H5T_IEEE_F32LE; } };
template <> struct H5Type<double> { static hid_t mem() { return H5T_NATIVE_DOUBLE; } static hid_t file() { return H5T_IEEE_F64LE; } };
template <> struct H5Type<int8_t> { static hid_t mem() { return H5T_NATIVE_INT8; } static hid_t file() { return H5T_STD_I8LE; } };
template <> struct H5Type<uint8_t> { static hid_t mem() { return H5T_NATIVE_UINT8; } static hid_t file() { return H5T_STD_U8LE; } };
template <> struct H5Type<int16_t> { static hid_t mem() { return H5T_NATIVE_INT16; } static hid_t file() { return H5T_STD_I16LE; } };
template <> struct H5Type<uint16_t> { static hid_t mem() { return H5T_NATIVE_UINT16; } static hid_t file() { return H5T_STD_U16LE; } };
template <> struct H5Type<int32_t> { static hid_t mem() { return H5T_NATIVE_INT32; } static hid_t file() { return H5T_STD_I32LE; } };
template <> struct H5Type<uint32_t> { static hid_t mem() { return H5T_NATIVE_UINT32; } static hid_t file() { return H5T_STD_U32LE; } };
template <> struct H5Type<int64_t> { static hid_t mem() { return H5T_NATIVE_INT64; } static hid_t file() { return H5T_STD_I64LE; } };

Handle simple_space(const Shape& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  if (dims.empty()) return check(H5Screate(H5S_SCALAR), "cannot create a dataspace");
  return check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "cannot create a dataspace");
}

Shape space_shape(hid_t space) {
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail("cannot read a dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  // Every dimension and their product inside int64 (a crafted file can
  // claim any): Shape arithmetic is signed.
  int64_t n = 1;
  for (hsize_t d : dims)
    if (d > static_cast<hsize_t>(INT64_MAX) || __builtin_mul_overflow(n, static_cast<int64_t>(d), &n))
      fail("a dataspace of {} elements or more", INT64_MAX);
  return Shape(dims.begin(), dims.end());
}

}  // namespace

bool is_hdf5(const std::string& path) {
  quiet();
  htri_t r = H5Fis_hdf5(path.c_str());
  if (r < 0) fail("cannot read the file");
  return r > 0;
}

Handle create_file(const std::string& path) {
  quiet();
  return check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "cannot create the HDF5 file");
}

Handle open_file_readonly(const std::string& path) {
  quiet();
  return check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "truncated or corrupt HDF5 file");
}

Handle open_file_readwrite(const std::string& path) {
  quiet();
  return check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "cannot open the HDF5 file for writing");
}

void flush(hid_t file) { check_status(H5Fflush(file, H5F_SCOPE_GLOBAL), "cannot flush the HDF5 file"); }

bool exists(hid_t parent, const std::string& name) {
  htri_t r = H5Lexists(parent, name.c_str(), H5P_DEFAULT);
  if (r < 0) fail("cannot look up '{}'", name);
  return r > 0;
}

Handle create_group(hid_t parent, const std::string& name) {
  Handle gcpl = untimed_gcpl();
  return check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT),
               fmt::format("cannot create group '{}'", name));
}

Handle open_group(hid_t parent, const std::string& name) {
  if (!exists(parent, name)) fail("missing group '{}'", name);
  return check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open group '{}'", name));
}

std::vector<std::string> children(hid_t group) {
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  check_status(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names), "cannot list a group");
  std::sort(names.begin(), names.end());
  return names;
}

bool has_attr(hid_t obj, const std::string& name) {
  htri_t r = H5Aexists(obj, name.c_str());
  if (r < 0) fail("cannot look up attribute '{}'", name);
  return r > 0;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  check_status(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names), "cannot list attributes");
  return names;
}

namespace {
template <typename T>
void write_numeric_attr(hid_t obj, const std::string& name, const T* data, const Shape& shape) {
  Handle space = simple_space(shape);
  Handle a = check(H5Acreate2(obj, name.c_str(), H5Type<T>::file(), space, H5P_DEFAULT, H5P_DEFAULT),
                   fmt::format("cannot create attribute '{}'", name));
  check_status(H5Awrite(a, H5Type<T>::mem(), data), fmt::format("cannot write attribute '{}'", name));
}
}  // namespace

void write_attr(hid_t obj, const std::string& name, const AttrValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) {
    write_numeric_attr<int64_t>(obj, name, i, {});
  } else if (auto* d = std::get_if<double>(&v)) {
    write_numeric_attr<double>(obj, name, d, {});
  } else if (auto* s = std::get_if<std::string>(&v)) {
    Handle t = vlen_string_type();
    Handle space = check(H5Screate(H5S_SCALAR), "cannot create a dataspace");
    Handle a = check(H5Acreate2(obj, name.c_str(), t, space, H5P_DEFAULT, H5P_DEFAULT),
                     fmt::format("cannot create attribute '{}'", name));
    const char* p = s->c_str();
    check_status(H5Awrite(a, t, &p), fmt::format("cannot write attribute '{}'", name));
  } else if (auto* iv = std::get_if<std::vector<int64_t>>(&v)) {
    write_numeric_attr<int64_t>(obj, name, iv->data(), {static_cast<int64_t>(iv->size())});
  } else if (auto* dv = std::get_if<std::vector<double>>(&v)) {
    write_numeric_attr<double>(obj, name, dv->data(), {static_cast<int64_t>(dv->size())});
  }
}

AttrValue read_attr(hid_t obj, const std::string& name) {
  if (!has_attr(obj, name)) fail("missing attribute '{}'", name);
  Handle a = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), fmt::format("cannot open attribute '{}'", name));
  Handle type = check(H5Aget_type(a), "cannot read an attribute type");
  Handle space = check(H5Aget_space(a), "cannot read an attribute dataspace");
  // A null dataspace (an attribute without a value) has no element to read.
  const H5S_class_t sclass = H5Sget_simple_extent_type(space);
  if (sclass != H5S_SCALAR && sclass != H5S_SIMPLE) fail("attribute '{}' has no value", name);
  bool scalar = sclass == H5S_SCALAR;
  Shape shape = scalar ? Shape{} : space_shape(space);
  if (shape.size() != 1 && !scalar) fail("attribute '{}' has rank {}", name, shape.size());
  size_t n = scalar ? 1 : static_cast<size_t>(shape[0]);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      std::vector<int64_t> v(n);
      if (n) check_status(H5Aread(a, H5T_NATIVE_INT64, v.data()), fmt::format("cannot read attribute '{}'", name));
      if (scalar) return v[0];
      return v;
    }
    case H5T_FLOAT: {
      std::vector<double> v(n);
      if (n) check_status(H5Aread(a, H5T_NATIVE_DOUBLE, v.data()), fmt::format("cannot read attribute '{}'", name));
      if (scalar) return v[0];
      return v;
    }
    case H5T_STRING: {
      if (!scalar) fail("attribute '{}' is a list of strings", name);
      auto v = read_attr_strings(obj, name);
      return v.at(0);
    }
    default:
      fail("attribute '{}' has an unsupported type", name);
  }
}

void write_attr_strings(hid_t obj, const std::string& name, const std::vector<std::string>& v) {
  Handle t = vlen_string_type();
  Handle space = simple_space({static_cast<int64_t>(v.size())});
  Handle a = check(H5Acreate2(obj, name.c_str(), t, space, H5P_DEFAULT, H5P_DEFAULT),
                   fmt::format("cannot create attribute '{}'", name));
  std::vector<const char*> ptrs;
  for (auto& s : v) ptrs.push_back(s.c_str());
  if (!v.empty()) check_status(H5Awrite(a, t, ptrs.data()), fmt::format("cannot write attribute '{}'", name));
}

std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name) {
  Handle a = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), fmt::format("cannot open attribute '{}'", name));
  Handle ftype = check(H5Aget_type(a), "cannot read an attribute type");
  if (H5Tget_class(ftype) != H5T_STRING) fail("attribute '{}' is not a string", name);
  Handle space = check(H5Aget_space(a), "cannot read an attribute dataspace");
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) fail("cannot read attribute '{}'", name);
  std::vector<std::string> out;
  if (n == 0) return out;
  if (H5Tis_variable_str(ftype) > 0) {
    Handle t = vlen_string_type();
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    check_status(H5Aread(a, t, ptrs.data()), fmt::format("cannot read attribute '{}'", name));
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(t, space, H5P_DEFAULT, ptrs.data());
  } else {
    size_t len = H5Tget_size(ftype);
    std::vector<char> buf(len * static_cast<size_t>(n) + 1, '\0');
    Handle t = check(H5Tcopy(H5T_C_S1), "cannot create a string type");
    H5Tset_size(t, len);
    check_status(H5Aread(a, t, buf.data()), fmt::format("cannot read attribute '{}'", name));
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * len;
      out.emplace_back(s, strnlen(s, len));
    }
  }
  return out;
}

namespace {
thread_local int g_compress_level = 0;  // CompressScope's, 0: none
constexpr size_t kMinCompressBytes = 4096;
}  // namespace

CompressScope::CompressScope(int level) : saved_(g_compress_level) {
  if (level < 1 || level > 9) fail("internal: deflate level {} is not 1..9", level);
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0 || H5Zfilter_avail(H5Z_FILTER_SHUFFLE) <= 0)
    fail("this HDF5 library has no deflate (zlib) or shuffle filter");
  g_compress_level = level;
}
CompressScope::~CompressScope() { g_compress_level = saved_; }

template <typename T>
void write_array(hid_t parent, const std::string& name, const Array<T>& a, bool compress) {
  Handle space = simple_space(a.shape());
  Handle dcpl = untimed_dcpl();
  // --compress leaves small datasets contiguous: deflate gains little on a
  // few KiB, and each chunked dataset costs a chunk index (a B-tree node of
  // about 2 KiB, more than many of them hold).
  const bool scoped = g_compress_level > 0 && a.size() * sizeof(T) >= kMinCompressBytes;
  if ((compress || scoped) && a.size() > 0 && a.rank() > 0) {
    // Chunks of about 256 KiB along the first axis.
    std::vector<hsize_t> chunk(a.shape().begin(), a.shape().end());
    size_t row = a.size() / static_cast<size_t>(a.dim(0));
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(chunk[0], (256 * 1024) / std::max<size_t>(1, row * sizeof(T))));
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    // Shuffle first: it groups the bytes of each significance together
    // (the exponent bytes of float32 weights), which deflate then finds.
    if (scoped) H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, scoped ? static_cast<unsigned>(g_compress_level) : 1u);
  }
  Handle d = check(H5Dcreate2(parent, name.c_str(), H5Type<T>::file(), space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                   fmt::format("cannot create dataset '{}'", name));
  if (a.size())
    check_status(H5Dwrite(d, H5Type<T>::mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data()),
                 fmt::format("cannot write dataset '{}'", name));
}

int64_t stored_bytes(hid_t parent, const std::string& name) {
  H5O_info_t info;
  check_status(H5Oget_info_by_name(parent, name.c_str(), &info, H5P_DEFAULT),
               fmt::format("cannot inspect '{}'", name));
  if (info.type == H5O_TYPE_DATASET) {
    Handle d = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open dataset '{}'", name));
    return static_cast<int64_t>(H5Dget_storage_size(d));
  }
  if (info.type != H5O_TYPE_GROUP) return 0;
  Handle g = open_group(parent, name);
  int64_t total = 0;
  for (const auto& c : children(g)) total += stored_bytes(g, c);
  return total;
}

Shape dataset_shape(hid_t parent, const std::string& name) {
  if (!exists(parent, name)) fail("missing dataset '{}'", name);
  Handle d = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open dataset '{}'", name));
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  return space_shape(space);
}

Shape open_dataset_shape(hid_t d) {
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  return space_shape(space);
}

namespace {
// "float32", "int64", ...: the name of a dataset's stored type, for errors.
std::string type_str(hid_t t) {
  const H5T_class_t cls = H5Tget_class(t);
  const size_t bits = H5Tget_size(t) * 8;
  if (cls == H5T_FLOAT) return fmt::format("float{}", bits);
  if (cls == H5T_INTEGER) return fmt::format("{}int{}", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
  if (cls == H5T_STRING) return "string";
  if (cls == H5T_ENUM) return "enum (bool?)";
  return "a non-numeric type";
}
template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, int8_t>) return "int8";
  if constexpr (std::is_same_v<T, uint8_t>) return "uint8";
  if constexpr (std::is_same_v<T, int16_t>) return "int16";
  if constexpr (std::is_same_v<T, uint16_t>) return "uint16";
  if constexpr (std::is_same_v<T, int32_t>) return "int32";
  if constexpr (std::is_same_v<T, uint32_t>) return "uint32";
  if constexpr (std::is_same_v<T, int64_t>) return "int64";
}

// Opens a numeric dataset to be read as mem_type (named tname in errors).
// exact: its stored type must be that type itself (in either byte order):
// HDF5 would otherwise convert silently, rounding a float64 parameter,
// truncating a float mask or saturating an int16 weight (man/bsp-format.5,
// TYPES).
// Checks that open dataset d (called `name`) holds numbers, and with exact
// that it stores mem_type's type.
void check_numeric(hid_t d, const std::string& name, hid_t mem_type, const char* tname, bool exact) {
  Handle ftype = check(H5Dget_type(d), "cannot read a dataset type");
  H5T_class_t cls = H5Tget_class(ftype);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) fail("dataset '{}' is not numeric ({})", name, type_str(ftype));
  if (exact) {
    Handle native = check(H5Tget_native_type(ftype, H5T_DIR_ASCEND), "cannot read a dataset type");
    if (H5Tequal(native, mem_type) <= 0) fail("dataset '{}' is {}, expected {}", name, type_str(ftype), tname);
  }
}

Handle open_numeric(hid_t parent, const std::string& name, hid_t mem_type, const char* tname, bool exact) {
  if (!exists(parent, name)) fail("missing dataset '{}'", name);
  Handle d = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open dataset '{}'", name));
  check_numeric(d, name, mem_type, tname, exact);
  return d;
}

template <typename T>
Array<T> read_array_impl(hid_t parent, const std::string& name, bool exact) {
  Handle d = open_numeric(parent, name, H5Type<T>::mem(), type_name<T>(), exact);
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  Array<T> a(space_shape(space));
  if (a.size())
    check_status(H5Dread(d, H5Type<T>::mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data()),
                 fmt::format("cannot read dataset '{}' (truncated or corrupt file?)", name));
  return a;
}
}  // namespace

template <typename T>
Array<T> read_array(hid_t parent, const std::string& name) {
  return read_array_impl<T>(parent, name, /*exact=*/true);
}

template <typename T>
Array<T> read_array_converted(hid_t parent, const std::string& name) {
  return read_array_impl<T>(parent, name, /*exact=*/false);
}

namespace {
// Where the values of a float dataset lie in its file when pread can read
// them as they are stored: a file opened read-only with the POSIX (sec2)
// driver, contiguous storage allocated in the file (so no filters, no
// external file), little-endian IEEE float32 stored and held (no
// conversion). Anything else: nullopt, and HDF5 reads it.
// HDF5's own read of such a dataset is one pread; reading slab by slab
// through H5Dread instead costs a hyperslab selection and a trip through
// HDF5's layers per slab (about 5% of `bsp info` on ResNet-50), so the slabs
// are read directly.
struct RawExtent {
  int fd;
  int64_t offset;  // bytes from the start of the file (H5Dget_offset includes a user block)
};

// The POSIX descriptor of the file holding d when it is open read-only (no
// unflushed data) with the sec2 driver, else -1. The driver query copies
// the file's access property list, so the answer is kept for the file last
// asked about: a file's id stays the same while it is open, and HDF5 does
// not reuse ids.
int sec2_readonly_fd(hid_t d) {
  thread_local hid_t last_file = -1;
  thread_local int last_fd = -1;
  Handle file(H5Iget_file_id(d));
  if (!file.valid()) return -1;
  if (file.get() == last_file) return last_fd;
  int fd = -1;
  unsigned intent = 0;
  Handle fapl(H5Fget_access_plist(file));
  void* handle = nullptr;
  if (H5Fget_intent(file, &intent) >= 0 && intent == H5F_ACC_RDONLY && fapl.valid() &&
      H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(file, fapl, &handle) >= 0 && handle)
    fd = *static_cast<int*>(handle);
  last_file = file.get();
  last_fd = fd;
  return fd;
}

// H5Dget_offset is defined only for contiguous storage in this file:
// chunked (and so filtered), compact, external or unallocated datasets
// give HADDR_UNDEF.
std::optional<RawExtent> raw_float_extent(hid_t d, size_t count) {
  if constexpr (std::endian::native != std::endian::little) return std::nullopt;
  Handle ftype(H5Dget_type(d));
  if (!ftype.valid() || H5Tequal(ftype, H5T_IEEE_F32LE) <= 0) return std::nullopt;
  const haddr_t off = H5Dget_offset(d);
  if (off == HADDR_UNDEF || off > static_cast<haddr_t>(std::numeric_limits<int64_t>::max()) ||
      H5Dget_storage_size(d) != count * sizeof(float))
    return std::nullopt;
  const int fd = sec2_readonly_fd(d);
  if (fd < 0) return std::nullopt;
  return RawExtent{fd, static_cast<int64_t>(off)};
}

// Reads bytes [offset, offset + n) of fd into out; false when the file ends
// first or a read fails.
bool pread_all(int fd, int64_t offset, char* out, size_t n) {
  while (n) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    offset += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}
}  // namespace

Array<float> read_floats_scanned(hid_t parent, const std::string& name, const SlabScan& scan) {
  if (!exists(parent, name)) fail("missing dataset '{}'", name);
  Handle d = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open dataset '{}'", name));
  return read_floats_scanned_open(d, name, scan);
}

namespace {
constexpr size_t kSlabBytes = size_t{256} << 10;  // 256 KB: still in L2 when scanned
constexpr size_t kSlabFloats = kSlabBytes / sizeof(float);

[[noreturn]] void fail_bad_read(const std::string& name) {
  fail("cannot read dataset '{}' (truncated or corrupt file?)", name);
}

// The direct read of d (count floats), checked to lie inside its file, or
// none when d is not stored so.
std::optional<RawExtent> checked_raw_extent(hid_t d, size_t count, const std::string& name) {
  auto raw = raw_float_extent(d, count);
  if (!raw) return raw;
  struct stat st {};
  const auto bytes = static_cast<int64_t>(count * sizeof(float));
  if (fstat(raw->fd, &st) != 0 || raw->offset > st.st_size - bytes) fail_bad_read(name);
  return raw;
}
}  // namespace

Array<float> read_floats_or_defer(hid_t d, const std::string& name, const SlabScan& scan,
                                  std::vector<DirectRead>& direct) {
  check_numeric(d, name, H5T_NATIVE_FLOAT, "float32", /*exact=*/true);
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  Array<float> a(space_shape(space));
  if (!a.size()) return a;
  if (auto raw = checked_raw_extent(d, a.size(), name)) {
    direct.push_back(DirectRead{raw->fd, raw->offset, a.data(), a.size()});
    return a;
  }
  return read_floats_scanned_open(d, name, scan);
}

std::vector<DirectResult> read_direct_parallel(const std::vector<DirectRead>& reads, SlabFind find) {
  // Slab s covers floats [first, first + n) of read r; each slab has its own
  // result slot, so the threads never write the same memory.
  struct Slab {
    size_t read, first, n;
  };
  std::vector<Slab> slabs;
  size_t total = 0;
  for (size_t r = 0; r < reads.size(); ++r) {
    for (size_t first = 0; first < reads[r].count; first += kSlabFloats)
      slabs.push_back(Slab{r, first, std::min(kSlabFloats, reads[r].count - first)});
    total += reads[r].count;
  }
  std::vector<char> failed(slabs.size(), 0);
  std::vector<int64_t> found(slabs.size(), -1);
  const auto ns = static_cast<int64_t>(slabs.size());
  // Below a few MB the threads cost more than they save.
#pragma omp parallel for schedule(dynamic, 4) if (total * sizeof(float) >= (size_t{4} << 20))
  for (int64_t i = 0; i < ns; ++i) {
    const Slab& s = slabs[static_cast<size_t>(i)];
    const DirectRead& r = reads[s.read];
    float* out = r.out + s.first;
    if (!pread_all(r.fd, r.offset + static_cast<int64_t>(s.first * sizeof(float)), reinterpret_cast<char*>(out),
                   s.n * sizeof(float))) {
      failed[static_cast<size_t>(i)] = 1;
      continue;
    }
    if (auto at = find(out, s.n)) found[static_cast<size_t>(i)] = static_cast<int64_t>(s.first + *at);
  }
  // Slabs are in read order and, within a read, in value order: the first
  // slab that found something holds the read's first hit.
  std::vector<DirectResult> out(reads.size());
  for (size_t i = 0; i < slabs.size(); ++i) {
    DirectResult& res = out[slabs[i].read];
    res.failed |= failed[i] != 0;
    if (!res.found && found[i] >= 0) res.found = static_cast<size_t>(found[i]);
  }
  return out;
}

Array<float> read_floats_scanned_open(hid_t d, const std::string& name, const SlabScan& scan) {
  check_numeric(d, name, H5T_NATIVE_FLOAT, "float32", /*exact=*/true);
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  Array<float> a(space_shape(space));
  if (!a.size()) return a;
  // The message is formatted only on failure: this runs for every parameter.
  auto bad_read = [&name]() { fail_bad_read(name); };
  if (auto raw = checked_raw_extent(d, a.size(), name)) {
    constexpr size_t slab = kSlabFloats;
    for (size_t first = 0; first < a.size(); first += slab) {
      const size_t n = std::min(slab, a.size() - first);
      if (!pread_all(raw->fd, raw->offset + static_cast<int64_t>(first * sizeof(float)),
                     reinterpret_cast<char*>(a.data() + first), n * sizeof(float)))
        bad_read();
      scan(a.data(), first, n);
    }
    return a;
  }
  const Shape& shape = a.shape();
  const size_t rows = shape.empty() ? 1 : static_cast<size_t>(shape[0]);
  const size_t row = rows ? a.size() / rows : 0;  // elements per first-dimension index
  const size_t slab_rows = std::max<size_t>(1, kSlabBytes / (row * sizeof(float)));
  if (slab_rows >= rows) {  // one read
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data()) < 0) bad_read();
    scan(a.data(), 0, a.size());
    return a;
  }
  std::vector<hsize_t> start(shape.size(), 0), count(shape.begin(), shape.end());
  for (size_t r = 0; r < rows; r += slab_rows) {
    const size_t n = std::min(slab_rows, rows - r);
    start[0] = r;
    count[0] = n;
    if (H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0) bad_read();
    const hsize_t elems = n * row;
    Handle mem = check(H5Screate_simple(1, &elems, nullptr), "cannot create a dataspace");
    if (H5Dread(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, a.data() + r * row) < 0) bad_read();
    scan(a.data(), r * row, elems);
  }
  return a;
}

#define BSP_H5_INSTANTIATE(T)                                                          \
  template void write_array<T>(hid_t, const std::string&, const Array<T>&, bool); \
  template Array<T> read_array<T>(hid_t, const std::string&);                   \
  template Array<T> read_array_converted<T>(hid_t, const std::string&);
BSP_H5_INSTANTIATE(float)
BSP_H5_INSTANTIATE(double)
BSP_H5_INSTANTIATE(int8_t)
BSP_H5_INSTANTIATE(uint8_t)
BSP_H5_INSTANTIATE(int16_t)
BSP_H5_INSTANTIATE(uint16_t)
BSP_H5_INSTANTIATE(int32_t)
BSP_H5_INSTANTIATE(uint32_t)
BSP_H5_INSTANTIATE(int64_t)
#undef BSP_H5_INSTANTIATE

void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& v) {
  Handle t = vlen_string_type();
  Handle space = simple_space({static_cast<int64_t>(v.size())});
  Handle dcpl = untimed_dcpl();
  Handle d = check(H5Dcreate2(parent, name.c_str(), t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                   fmt::format("cannot create dataset '{}'", name));
  std::vector<const char*> ptrs;
  for (auto& s : v) ptrs.push_back(s.c_str());
  if (!v.empty())
    check_status(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), fmt::format("cannot write dataset '{}'", name));
}

std::vector<std::string> read_strings(hid_t parent, const std::string& name) {
  if (!exists(parent, name)) fail("missing dataset '{}'", name);
  Handle d = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), fmt::format("cannot open dataset '{}'", name));
  Handle ftype = check(H5Dget_type(d), "cannot read a dataset type");
  if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) <= 0)
    fail("dataset '{}' is not a list of strings", name);
  Handle space = check(H5Dget_space(d), "cannot read a dataspace");
  hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<std::string> out;
  if (n <= 0) return out;
  Handle t = vlen_string_type();
  std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
  check_status(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), fmt::format("cannot read dataset '{}'", name));
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5Dvlen_reclaim(t, space, H5P_DEFAULT, ptrs.data());
  return out;
}

int64_t read_attr_int(hid_t obj, const std::string& name) {
  auto v = read_attr(obj, name);
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  fail("attribute '{}' is not an integer", name);
}

std::vector<int64_t> read_attr_ints(hid_t obj, const std::string& name) {
  auto v = read_attr(obj, name);
  if (auto* i = std::get_if<std::vector<int64_t>>(&v)) return *i;
  if (auto* i = std::get_if<int64_t>(&v)) return {*i};
  fail("attribute '{}' is not a list of integers", name);
}

double read_attr_double(hid_t obj, const std::string& name) {
  auto v = read_attr(obj, name);
  if (auto* d = std::get_if<double>(&v)) return *d;
  fail("attribute '{}' is not a number", name);
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  auto v = read_attr(obj, name);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  fail("attribute '{}' is not a string", name);
}

}  // namespace bsp::h5
