// Checked integer arithmetic and the plausibility limits of a model file
// (man/bsp-format.5, LIMITS). Every shape, stride, MAC and byte count that a
// file decides is computed in int64 through these helpers while the model
// is validated; past validation the limits below guarantee that the products
// the kernels and the scheduler form (an activation's elements, a layer's
// MACs, a model's total) fit in int64, and a single image's activation in
// int32 indices.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace bsp {

namespace limits {
// Each input dimension (H, W, C) and each window attribute (kernel, stride,
// pad, dilation) and conv groups: 2^24. Sixteen million pixels a side is far
// past any image; a stride or a dilation of that size means nothing.
constexpr int64_t kMaxDim = int64_t{1} << 24;
// The elements of one activation of one image, the padded input of a
// window op included: 2^30 (4 GiB in fp32). Keeps every index within an
// image below 2^31.
constexpr int64_t kMaxActivation = int64_t{1} << 30;
// The parameters of the whole model (weights, biases, batchnorm
// statistics): 2^30 elements (4 GiB in fp32; VGG-16 has 1.4e8).
constexpr int64_t kMaxParams = int64_t{1} << 30;
// Multiply-accumulates per image over the whole model: 2^46 (7.0e13;
// ResNet-50 does 4.1e9).
constexpr int64_t kMaxMacs = int64_t{1} << 46;
}  // namespace limits

// a * b, a + b; false when the result does not fit in int64.
[[nodiscard]] inline bool mul_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
[[nodiscard]] inline bool add_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

// a * b and a + b, or bsp::Error "{what} overflows int64 ({a} x {b})".
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);
int64_t checked_add(int64_t a, int64_t b, const std::string& what);
// The product of a shape's dimensions (each >= 0), or bsp::Error naming `what`.
int64_t checked_numel(const Shape& s, const std::string& what);

// "68.7 GB": a byte count for messages (decimal units, 3 significant digits).
std::string human_bytes(double bytes);

// Throws unless 1 <= v <= limits::kMaxDim (0 <= v for `allow_zero`):
// "node 'c': stride 4294967296 is out of range: 1 to 16777216 (bsp-format(5), LIMITS)".
void check_dim(const std::string& node, const char* what, int64_t v, bool allow_zero = false);

// Throws unless an activation `shape` (per image, fp32) is within
// limits::kMaxActivation: "node 'c': output [H, W, C] needs 68.7 GB per
// image, above bsp's limit of 4.29 GB (bsp-format(5), LIMITS)". `what`
// names the tensor ("output", "padded input").
void check_activation(const std::string& node, const char* what, const Shape& shape);

}  // namespace bsp
