// N:M masks: in every group of M consecutive indices along one axis of a
// tensor (at fixed values of the other indices), keep the N of largest
// magnitude. Conv weights are OHWI [Cout, kh, kw, Cin]: along axis 3 (Cin)
// this is the forward mask of N:M sparsity and BDWP; along axis 0 (Cout) it
// is the mask of the transposed weight BDWP uses for the data gradient.
//
// A last group shorter than M (the axis length not a multiple of M) keeps at
// most min(N, its length), as if padded with zeros. Equal magnitudes keep the
// lower index. Cheap enough to call every training step: one pass, no
// allocation beyond the output.
#pragma once

#include <cstdint>

#include "core/tensor.hpp"

namespace bsp {

// The tensor `w` viewed as [outer, len, inner] (row-major); groups run along
// `len`. `keep` (same layout, may be null) restricts the choice: an entry with
// keep = 0 is never kept, so the result is a subset of `keep`. `out` gets 1
// for kept, 0 for pruned. 1 <= N <= M <= 256.
void nm_mask(const float* w, int64_t outer, int64_t len, int64_t inner, int64_t n, int64_t m, const uint8_t* keep,
             uint8_t* out);

// The N:M mask of `w` along `axis` (0 = Cout ... rank-1 = Cin for a conv).
Array<uint8_t> nm_mask(const Tensor& w, size_t axis, int64_t n, int64_t m, const uint8_t* keep = nullptr);

}  // namespace bsp
