// The element types bsp stores and runs: one enum for the compact weights,
// the int8 program and the AIE2 back end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bsp {

// The values are hashed into stored schedules and programs (aie2/store.cpp):
// never reorder.
enum class DType { Int8, BF16, FP32 };

const char* dtype_name(DType t);                              // "int8", "bf16", "fp32"
std::optional<DType> dtype_from_name(std::string_view s);     // nullopt for another name
DType parse_dtype(const std::string& s);                      // throws UsageError naming the choices
int64_t dtype_bytes(DType t);                                 // 1, 2, 4

}  // namespace bsp
