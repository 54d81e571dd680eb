#include "core/dtype.hpp"

#include "core/error.hpp"

namespace bsp {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Int8: return "int8";
    case DType::BF16: return "bf16";
    case DType::FP32: return "fp32";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view s) {
  for (DType t : {DType::Int8, DType::BF16, DType::FP32})
    if (s == dtype_name(t)) return t;
  return std::nullopt;
}

DType parse_dtype(const std::string& s) {
  if (auto t = dtype_from_name(s)) return *t;
  fail_usage("unknown data type '{}' (int8, bf16, fp32)", s);
}

int64_t dtype_bytes(DType t) { return t == DType::Int8 ? 1 : t == DType::BF16 ? 2 : 4; }

}  // namespace bsp
