#include "onnx/tensors.hpp"

#include <cmath>
#include <cstring>
#include <fstream>

#include <onnx/onnx_pb.h>

#include "core/error.hpp"

namespace bsp::onnx_io {

std::vector<int64_t> Const::ints(const std::string& what) const {
  if (is_int) return i;
  std::vector<int64_t> v;
  for (float x : f) {
    if (x != std::nearbyint(x)) fail("{} holds {}, not a whole number", what, x);
    v.push_back(static_cast<int64_t>(x));
  }
  return v;
}

Tensor Const::floats() const {
  if (!is_int) return f.clone();
  Tensor t(Shape{static_cast<int64_t>(i.size())});
  for (size_t k = 0; k < i.size(); ++k) t[k] = static_cast<float>(i[k]);
  return t;
}

namespace {

// The bytes of a tensor stored outside the model file (data_location
// EXTERNAL): `location` relative to the model's directory, from `offset`,
// `length` bytes (default: to the end of the file).
std::string external_bytes(const onnx::TensorProto& t, const std::string& dir) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset = std::stoll(kv.value());
    if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty()) fail("tensor '{}': external data without a location", t.name());
  const std::string path = location[0] == '/' ? location : dir + "/" + location;
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("tensor '{}': external data '{}' is missing", t.name(), location);
  f.seekg(0, std::ios::end);
  const int64_t size = f.tellg();
  if (length < 0) length = size - offset;
  if (offset < 0 || offset + length > size)
    fail("tensor '{}': external data '{}' holds {} bytes, the tensor needs {} from offset {}", t.name(), location, size,
         length, offset);
  std::string bytes(static_cast<size_t>(length), '\0');
  f.seekg(offset);
  f.read(bytes.data(), length);
  return bytes;
}

template <typename T>
void from_raw(const std::string& raw, int64_t n, const std::string& name, std::vector<T>& out) {
  if (static_cast<int64_t>(raw.size()) != n * static_cast<int64_t>(sizeof(T)))
    fail("tensor '{}': {} bytes of data for {} values", name, raw.size(), n);
  out.resize(static_cast<size_t>(n));
  if (n) std::memcpy(out.data(), raw.data(), raw.size());
}

}  // namespace

Const read_tensor(const onnx::TensorProto& t, const std::string& dir) {
  Const c;
  for (int64_t d : t.dims()) {
    if (d < 0) fail("tensor '{}': negative dimension {}", t.name(), d);
    c.dims.push_back(d);
  }
  const int64_t n = shape_numel(c.dims);
  const bool external = t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL;
  const std::string ext = external ? external_bytes(t, dir) : std::string();
  const std::string& raw = external ? ext : t.raw_data();  // (no copy of the proto's bytes)
  const bool has_raw = external || t.has_raw_data();
  auto count = [&](int64_t got) {
    if (got != n) fail("tensor '{}': {} values for dimensions of {}", t.name(), got, n);
  };
  switch (t.data_type()) {
    case onnx::TensorProto_DataType_FLOAT: {
      c.f = Tensor(Shape{n});
      if (has_raw) {
        if (static_cast<int64_t>(raw.size()) != n * 4) fail("tensor '{}': {} bytes of data for {} values", t.name(), raw.size(), n);
        if (n) std::memcpy(c.f.data(), raw.data(), raw.size());
      } else {
        count(t.float_data_size());
        std::copy(t.float_data().begin(), t.float_data().end(), c.f.data());
      }
      break;
    }
    case onnx::TensorProto_DataType_DOUBLE: {
      std::vector<double> v;
      if (has_raw)
        from_raw(raw, n, t.name(), v);
      else
        v.assign(t.double_data().begin(), t.double_data().end());
      count(static_cast<int64_t>(v.size()));
      c.f = Tensor(Shape{n});
      for (int64_t k = 0; k < n; ++k) c.f[static_cast<size_t>(k)] = static_cast<float>(v[static_cast<size_t>(k)]);
      break;
    }
    case onnx::TensorProto_DataType_INT64: {
      c.is_int = true;
      if (has_raw)
        from_raw(raw, n, t.name(), c.i);
      else
        c.i.assign(t.int64_data().begin(), t.int64_data().end());
      count(static_cast<int64_t>(c.i.size()));
      break;
    }
    case onnx::TensorProto_DataType_INT32:
    case onnx::TensorProto_DataType_INT8:
    case onnx::TensorProto_DataType_UINT8:
    case onnx::TensorProto_DataType_BOOL: {
      c.is_int = true;
      if (has_raw) {
        const int width = t.data_type() == onnx::TensorProto_DataType_INT32 ? 4 : 1;
        if (static_cast<int64_t>(raw.size()) != n * width)
          fail("tensor '{}': {} bytes of data for {} values", t.name(), raw.size(), n);
        for (int64_t k = 0; k < n; ++k) {
          int64_t v = 0;
          if (width == 4) {
            int32_t x;
            std::memcpy(&x, raw.data() + 4 * k, 4);
            v = x;
          } else {
            v = t.data_type() == onnx::TensorProto_DataType_INT8 ? static_cast<int8_t>(raw[static_cast<size_t>(k)])
                                                                 : static_cast<uint8_t>(raw[static_cast<size_t>(k)]);
          }
          c.i.push_back(v);
        }
      } else {
        c.i.assign(t.int32_data().begin(), t.int32_data().end());  // all of these store int32_data
      }
      count(static_cast<int64_t>(c.i.size()));
      break;
    }
    default:
      fail("tensor '{}': element type {} is not supported (float32, float64 and integers are)", t.name(),
           onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(t.data_type())));
  }
  return c;
}

}  // namespace bsp::onnx_io
