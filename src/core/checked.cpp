#include "core/checked.hpp"

#include <cmath>
#include <iterator>

namespace bsp {

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (!mul_ok(a, b, r)) fail("{} overflows int64 ({} x {})", what, a, b);
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (!add_ok(a, b, r)) fail("{} overflows int64 ({} + {})", what, a, b);
  return r;
}

int64_t checked_numel(const Shape& s, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail("{} {} has a negative dimension", what, shape_str(s));
    if (!mul_ok(n, d, n)) fail("{} {} has more elements than int64 holds", what, shape_str(s));
  }
  return n;
}

std::string human_bytes(double bytes) {
  static const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  size_t u = 0;
  while (bytes >= 1000 && u + 1 < std::size(units)) bytes /= 1000, ++u;
  if (u == 0) return fmt::format("{} bytes", bytes);
  return fmt::format("{:.3g} {}", bytes, units[u]);
}

void check_dim(const std::string& node, const char* what, int64_t v, bool allow_zero) {
  const int64_t lo = allow_zero ? 0 : 1;
  if (v < lo || v > limits::kMaxDim)
    fail("node '{}': {} {} is out of range: {} to {} (bsp-format(5), LIMITS)", node, what, v, lo, limits::kMaxDim);
}

void check_activation(const std::string& node, const char* what, const Shape& shape) {
  // In double: the product may be far past int64 (a lying file's shape).
  double elems = 1;
  for (int64_t d : shape) elems *= static_cast<double>(d);
  if (elems > static_cast<double>(limits::kMaxActivation))
    fail("node '{}': {} {} needs {} per image, above bsp's limit of {} (bsp-format(5), LIMITS)", node, what,
         shape_str(shape), human_bytes(elems * sizeof(float)),
         human_bytes(static_cast<double>(limits::kMaxActivation) * sizeof(float)));
}

}  // namespace bsp
