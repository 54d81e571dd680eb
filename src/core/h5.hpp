// Thin RAII wrappers over the HDF5 C API, used by the model file reader and
// writer. Every failure throws bsp::Error with a short lowercase reason; the
// caller adds which file it was.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <hdf5.h>

#include "core/model.hpp"
#include "core/tensor.hpp"

namespace bsp::h5 {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
};

// Silences HDF5's own error printing (bsp reports errors itself). Idempotent.
void quiet();

// Returns 1 for an HDF5 file, 0 for another file; throws if unreadable.
bool is_hdf5(const std::string& path);
Handle create_file(const std::string& path);
Handle open_file_readonly(const std::string& path);
Handle open_file_readwrite(const std::string& path);  // to add groups to a file just written
void flush(hid_t file);

bool exists(hid_t parent, const std::string& name);
Handle create_group(hid_t parent, const std::string& name);
Handle open_group(hid_t parent, const std::string& name);
std::vector<std::string> children(hid_t group);  // link names, sorted

// Attributes: scalar int64 / double / string, 1-D int64 / double / string lists.
bool has_attr(hid_t obj, const std::string& name);
std::vector<std::string> attr_names(hid_t obj);
void write_attr(hid_t obj, const std::string& name, const AttrValue& v);
AttrValue read_attr(hid_t obj, const std::string& name);
void write_attr_strings(hid_t obj, const std::string& name, const std::vector<std::string>& v);
std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name);
// One attribute of a known type; an error naming the attribute otherwise.
int64_t read_attr_int(hid_t obj, const std::string& name);
std::vector<int64_t> read_attr_ints(hid_t obj, const std::string& name);  // a single integer is a list of one
double read_attr_double(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);

// Datasets of numbers; the element type follows T (float, double, int8_t,
// uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t). `compress` turns on
// chunked deflate storage (for masks and other compressible arrays).
template <typename T>
void write_array(hid_t parent, const std::string& name, const Array<T>& a, bool compress = false);

// bsp's --compress: while a CompressScope lives (on this thread), every
// dataset write_array creates of 4 KiB or more is chunked (about 256 KiB per
// chunk, along the first axis) and stored with HDF5's shuffle filter
// followed by deflate at `level` (1..9), `compress` or not; smaller ones are
// written as without it. Readers need nothing: HDF5 undoes the filters.
class CompressScope {
 public:
  explicit CompressScope(int level);
  ~CompressScope();
  CompressScope(const CompressScope&) = delete;
  CompressScope& operator=(const CompressScope&) = delete;

 private:
  int saved_;
};

// Bytes stored for the datasets under a group (or the dataset itself), as
// HDF5 reports them (after filters; headers and attributes not counted).
int64_t stored_bytes(hid_t parent, const std::string& name);
// read_array refuses a dataset stored as another type than T (a float64 or
// int32 "weight", an int16 int8 array); read_array_converted lets HDF5
// convert any number type to T, for data files that allow any integer type.
template <typename T>
Array<T> read_array(hid_t parent, const std::string& name);
template <typename T>
Array<T> read_array_converted(hid_t parent, const std::string& name);
Shape dataset_shape(hid_t parent, const std::string& name);
Shape open_dataset_shape(hid_t d);  // of a dataset already open
// read_array<float> in slabs of about 256 KB along the first dimension, each
// handed to scan(values, first, count) (the whole array's data and the
// slab's flat element range) while still in the cache: a check of every
// value then costs no second pass over memory.
using SlabScan = std::function<void(const float* values, size_t first, size_t count)>;
Array<float> read_floats_scanned(hid_t parent, const std::string& name, const SlabScan& scan);
// The same for dataset d, already open (`name` for messages).
Array<float> read_floats_scanned_open(hid_t d, const std::string& name, const SlabScan& scan);

// A float32 dataset read straight from the file with pread, outside HDF5, so
// that several can be read at once by OpenMP threads (HDF5 itself is not
// thread-safe): contiguous, unfiltered, little-endian float32 in a file open
// read-only with the POSIX (sec2) driver, checked to lie inside the file.
struct DirectRead {
  int fd;
  int64_t offset;  // bytes from the start of the file
  float* out;      // count floats, owned by the caller's array
  size_t count;
};
// read_floats_scanned_open when d cannot be read directly; otherwise the
// array is returned unfilled and its read appended to `direct`, for
// read_direct_parallel (the array's buffer must stay where it is until then).
Array<float> read_floats_or_defer(hid_t d, const std::string& name, const SlabScan& scan,
                                  std::vector<DirectRead>& direct);
// Per read: whether it failed (the file ended first or a read failed) and the
// first index where find(values, count) found something.
struct DirectResult {
  bool failed = false;
  std::optional<size_t> found;
};
using SlabFind = std::optional<size_t> (*)(const float* values, size_t count);
// Runs every read in 256 KB slabs spread over the OpenMP threads, each slab
// handed to find while still in the cache.
std::vector<DirectResult> read_direct_parallel(const std::vector<DirectRead>& reads, SlabFind find);

void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& v);
std::vector<std::string> read_strings(hid_t parent, const std::string& name);

}  // namespace bsp::h5
