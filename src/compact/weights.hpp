// Compact storage of one layer's weights: the forms the sparse kernels read
// (man/bsp-format.5, section COMPACT WEIGHTS, is the normative layout).
//
// A weight is viewed as [O, kh, kw, I]: conv2d OHWI [Cout, kh, kw, Cin/groups],
// dense [out, in] with kh = kw = 1. K = kh*kw*I is the reduction length and
// k = (y*kw + x)*I + i indexes one output channel's row of K weights.
//
//   dense  values [O, kh, kw, I], as the graph stores them.
//   bsr    blocks of R outputs x C inputs spanning the whole kernel window:
//          row_ptr [ceil(O/R)+1], col_idx [nnzb] (ascending inside a block
//          row), values [nnzb, kh, kw, R, C] in block-row order, which is the
//          order the kernels stream them. Edge blocks are zero-padded to R x C.
//   nm     N of every M consecutive input channels (at fixed o, y, x):
//          values [O, kh, kw, I/M, N] and per value a position 0..M-1 in
//          ceil(log2 M) bits (2 bits for 2:4), packed little-endian.
//   tw     tiles of output channels (tile-wise sparsity): per tile a packed
//          dense matrix [k_t, n_t] (row-major) with row-gather indices (which
//          k) and column-scatter indices (which o). Output channels in no tile
//          are all zero.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/dtype.hpp"
#include "core/model.hpp"

namespace bsp::compact {

enum class Format { Dense, Bsr, NM, TW };

const char* format_name(Format f);
std::optional<Format> format_from_name(std::string_view s);

// bf16 = the upper 16 bits of an fp32, rounded to nearest even (NaN kept NaN).
uint16_t to_bf16(float f);
float from_bf16(uint16_t b);

// The weight of a conv2d or dense node viewed as [O, kh, kw, I].
struct WeightGeom {
  int64_t O = 0, kh = 1, kw = 1, I = 0;
  int64_t K() const { return kh * kw * I; }
  int64_t numel() const { return O * K(); }
};
WeightGeom weight_geom(const Shape& weight_shape);

using Values = std::variant<std::vector<float>, std::vector<uint16_t>, std::vector<int8_t>>;

struct CompactLayer {
  Format format = Format::Dense;
  DType dtype = DType::FP32;
  Shape weight_shape;  // the dense weight's shape (OHWI or [out, in])

  // bsr
  int64_t R = 0, C = 0;
  std::vector<int32_t> row_ptr, col_idx;
  // nm
  int64_t N = 0, M = 0;
  std::vector<uint8_t> nm_index;  // packed positions, index_bits() bits each
  // tw
  int64_t G = 0;  // the tile width the layer was pruned with (informative)
  std::vector<int32_t> tile_row_ptr, tile_rows;  // [T+1], k indices of each tile
  std::vector<int32_t> tile_col_ptr, tile_cols;  // [T+1], output channels of each tile

  Values values;

  WeightGeom geom() const { return weight_geom(weight_shape); }
  int64_t block_rows() const { return (geom().O + R - 1) / R; }
  int64_t block_cols() const { return (geom().I + C - 1) / C; }
  int64_t nnz_blocks() const { return static_cast<int64_t>(col_idx.size()); }
  int index_bits() const;  // nm: ceil(log2 M), at least 1
  int64_t tiles() const { return tile_row_ptr.empty() ? 0 : static_cast<int64_t>(tile_row_ptr.size()) - 1; }
  // Offset of tile t's values: sum of k_s * n_s over s < t.
  int64_t tile_value_offset(int64_t t) const;

  template <typename T>
  const std::vector<T>& vals() const { return std::get<std::vector<T>>(values); }
  template <typename T>
  std::vector<T>& vals() { return std::get<std::vector<T>>(values); }

  // Bytes of this compact form: values plus index arrays.
  int64_t bytes() const;
  // Multiply-accumulates per output position actually stored (zero padding
  // of edge blocks and nm filler slots included).
  int64_t stored_weights() const;

  // Throws bsp::Error("...") when the arrays do not fit together (sizes,
  // index ranges, ordering): run on every layer read from a file.
  void check() const;
};

// How to choose a layer's format. `Auto` picks from the mask's pattern:
// block:RxC -> bsr, nm:N:M -> nm (dense when I is not a multiple of M),
// tw:G / tvw:G / channel -> tw, unstructured or no mask -> dense.
Format auto_format(const Node& n);

// Parameters for compress(): `format` must not be Auto-resolved already.
struct CompressSpec {
  Format format = Format::Dense;
  int64_t R = 8, C = 8;  // bsr block (taken from a block mask when there is one)
  int64_t N = 0, M = 0;  // nm
  int64_t G = 128;       // tw tile width
  // tw: the tile structure recorded by bsp prune (Mask::column_tile [O],
  // Mask::tile_rows [tiles, K]); null: tiles cut from the kept columns.
  const int32_t* column_tile = nullptr;
  const uint8_t* tile_rows = nullptr;
  int64_t tiles = 0;
};

// The spec for node `n` in `format` (block size, N:M, tile width and tile
// structure from the mask; the spec points into n's mask). Throws bsp::Error when the layer cannot take the format
// (nm without an N:M pattern or with I % M != 0, ...).
CompressSpec spec_for(const Node& n, Format format);

// Compresses dense weights w [O, kh, kw, I] (values of type T, weights the
// mask prunes must already be zero) given the element mask `keep` of the same
// size (nullptr: keep every nonzero). Positions the mask drops are treated as
// zero. Throws when the weights do not have the structure (an N:M group with
// more than N kept values).
template <typename T>
CompactLayer compress(const T* w, const Shape& weight_shape, const uint8_t* keep, const CompressSpec& spec);

// The dense weights [O, kh, kw, I] back from a compact layer of element type T.
template <typename T>
std::vector<T> expand(const CompactLayer& l);

}  // namespace bsp::compact
