#include "compact/weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "sparsity/blocks.hpp"

namespace bsp::compact {

const char* format_name(Format f) {
  switch (f) {
    case Format::Dense: return "dense";
    case Format::Bsr: return "bsr";
    case Format::NM: return "nm";
    case Format::TW: return "tw";
  }
  return "?";
}

std::optional<Format> format_from_name(std::string_view s) {
  for (Format f : {Format::Dense, Format::Bsr, Format::NM, Format::TW})
    if (s == format_name(f)) return f;
  return std::nullopt;
}

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

WeightGeom weight_geom(const Shape& s) {
  WeightGeom g;
  if (s.size() == 4) {
    g.O = s[0], g.kh = s[1], g.kw = s[2], g.I = s[3];
  } else if (s.size() == 2) {
    g.O = s[0], g.I = s[1];
  } else {
    fail("weight of shape {} is neither OHWI nor [out, in]", shape_str(s));
  }
  return g;
}

int CompactLayer::index_bits() const {
  int b = 1;
  while ((int64_t{1} << b) < M) ++b;
  return b;
}

int64_t CompactLayer::tile_value_offset(int64_t t) const {
  int64_t off = 0;
  for (int64_t s = 0; s < t; ++s)
    off += static_cast<int64_t>(tile_row_ptr[s + 1] - tile_row_ptr[s]) * (tile_col_ptr[s + 1] - tile_col_ptr[s]);
  return off;
}

int64_t CompactLayer::bytes() const {
  int64_t b = 0;
  std::visit([&](const auto& v) { b += static_cast<int64_t>(v.size() * sizeof(v[0])); }, values);
  auto ints = [](const std::vector<int32_t>& v) { return static_cast<int64_t>(v.size() * sizeof(int32_t)); };
  b += ints(row_ptr) + ints(col_idx) + static_cast<int64_t>(nm_index.size());
  b += ints(tile_row_ptr) + ints(tile_rows) + ints(tile_col_ptr) + ints(tile_cols);
  return b;
}

int64_t CompactLayer::stored_weights() const {
  int64_t n = 0;
  std::visit([&](const auto& v) { n = static_cast<int64_t>(v.size()); }, values);
  return n;
}

namespace {

size_t values_size(const Values& v) {
  size_t n = 0;
  std::visit([&](const auto& x) { n = x.size(); }, v);
  return n;
}

void check_ptr(const std::vector<int32_t>& ptr, size_t rows, size_t total, const char* what) {
  if (ptr.size() != rows + 1) fail("{}: {} entries, expected {}", what, ptr.size(), rows + 1);
  if (ptr.front() != 0 || static_cast<size_t>(ptr.back()) != total) fail("{}: does not span 0..{}", what, total);
  for (size_t i = 0; i + 1 < ptr.size(); ++i)
    if (ptr[i + 1] < ptr[i]) fail("{}: decreasing at {}", what, i);
}

// The positions of every N:M group (bits bits each, packed little-endian)
// ascend strictly and lie in 0..M-1 (man/bsp-format.5, COMPACT WEIGHTS): a
// repeated position would make two stored values one weight.
void check_nm_positions(const std::vector<uint8_t>& index, size_t groups, int64_t N, int64_t M, int bits) {
  const uint8_t* p = index.data();
  const size_t size = index.size();
  auto pos_at = [&](uint64_t bit) {
    // up to 8 + 7 bits from two bytes; wider positions bit by bit
    if (bits <= 8) {
      const size_t i = bit / 8;
      const uint32_t w = p[i] | (i + 1 < size ? static_cast<uint32_t>(p[i + 1]) << 8 : 0u);
      return static_cast<int64_t>((w >> (bit % 8)) & ((1u << bits) - 1));
    }
    int64_t v = 0;
    for (int b = 0; b < bits; ++b) v |= static_cast<int64_t>((p[(bit + b) / 8] >> ((bit + b) % 8)) & 1u) << b;
    return v;
  };
  uint64_t bit = 0;
  for (size_t g = 0; g < groups; ++g) {
    int64_t prev = -1;
    for (int64_t s = 0; s < N; ++s, bit += static_cast<uint64_t>(bits)) {
      const int64_t q = pos_at(bit);
      if (q <= prev || q >= M)
        fail("nm index: group {} holds position {} after {}: positions ascend, each below M = {}", g, q, prev, M);
      prev = q;
    }
  }
}

}  // namespace

void CompactLayer::check() const {
  const WeightGeom g = geom();
  if (g.O <= 0 || g.I <= 0 || g.kh <= 0 || g.kw <= 0) fail("bad weight shape {}", shape_str(weight_shape));
  const size_t nv = values_size(values);
  switch (format) {
    case Format::Dense:
      if (nv != static_cast<size_t>(g.numel())) fail("dense values: {} entries, expected {}", nv, g.numel());
      break;
    case Format::Bsr: {
      if (R < 1 || C < 1) fail("bsr block size {}x{}", R, C);
      const int64_t rows = block_rows(), cols = block_cols();
      check_ptr(row_ptr, static_cast<size_t>(rows), col_idx.size(), "bsr row_ptr");
      for (int64_t r = 0; r < rows; ++r)
        for (int32_t j = row_ptr[r]; j < row_ptr[r + 1]; ++j) {
          if (col_idx[j] < 0 || col_idx[j] >= cols) fail("bsr col_idx {} out of range", col_idx[j]);
          if (j > row_ptr[r] && col_idx[j] <= col_idx[j - 1]) fail("bsr col_idx not ascending in block row {}", r);
        }
      if (nv != col_idx.size() * static_cast<size_t>(g.kh * g.kw * R * C))
        fail("bsr values: {} entries for {} blocks", nv, col_idx.size());
      break;
    }
    case Format::NM: {
      if (N < 1 || M < 2 || N > M || g.I % M) fail("nm {}:{} on {} input channels", N, M, g.I);
      const size_t slots = static_cast<size_t>(g.O * g.kh * g.kw * (g.I / M) * N);
      if (nv != slots) fail("nm values: {} entries, expected {}", nv, slots);
      if (nm_index.size() != (slots * static_cast<size_t>(index_bits()) + 7) / 8)
        fail("nm index: {} bytes, expected {}", nm_index.size(), (slots * index_bits() + 7) / 8);
      check_nm_positions(nm_index, slots / static_cast<size_t>(N), N, M, index_bits());
      break;
    }
    case Format::TW: {
      if (tile_row_ptr.size() != tile_col_ptr.size() || tile_row_ptr.empty()) fail("tw tile pointers differ in length");
      const size_t t = tile_row_ptr.size() - 1;
      check_ptr(tile_row_ptr, t, tile_rows.size(), "tw tile_row_ptr");
      check_ptr(tile_col_ptr, t, tile_cols.size(), "tw tile_col_ptr");
      for (int32_t k : tile_rows)
        if (k < 0 || k >= g.K()) fail("tw row index {} out of range", k);
      // Within a tile its rows and its columns ascend (a repeated row would
      // count its input twice).
      for (size_t q = 0; q < t; ++q) {
        for (int32_t j = tile_row_ptr[q] + 1; j < tile_row_ptr[q + 1]; ++j)
          if (tile_rows[j] <= tile_rows[j - 1]) fail("tw tile {}: rows {} and {} do not ascend", q, tile_rows[j - 1], tile_rows[j]);
        for (int32_t j = tile_col_ptr[q] + 1; j < tile_col_ptr[q + 1]; ++j)
          if (tile_cols[j] <= tile_cols[j - 1])
            fail("tw tile {}: columns {} and {} do not ascend", q, tile_cols[j - 1], tile_cols[j]);
      }
      std::vector<uint8_t> seen(static_cast<size_t>(g.O), 0);
      for (int32_t o : tile_cols) {
        if (o < 0 || o >= g.O) fail("tw column index {} out of range", o);
        if (seen[o]++) fail("tw output channel {} in two tiles", o);
      }
      if (nv != static_cast<size_t>(tile_value_offset(static_cast<int64_t>(t))))
        fail("tw values: {} entries, expected {}", nv, tile_value_offset(static_cast<int64_t>(t)));
      break;
    }
  }
}

namespace {
// The "nm:N:M" a pattern stores as the nm format: nm:N:M itself, or the N:M
// part of block:RxC+nm:N:M; null for any other pattern.
const char* nm_part(const std::string& p) {
  if (p.rfind("nm:", 0) == 0) return p.c_str();
  const size_t at = p.rfind("block:", 0) == 0 ? p.find("+nm:") : std::string::npos;
  return at == std::string::npos ? nullptr : p.c_str() + at + 1;
}
}  // namespace

Format auto_format(const Node& n) {
  if (!n.mask) return Format::Dense;
  const std::string& p = n.mask->pattern;
  // block:RxC+nm:N:M is stored as its N:M part; tw:G+nm:N:M as its tiles (below).
  const char* nm = nm_part(p);
  if (!nm && (n.mask->is_block() || p.rfind("block:", 0) == 0)) return n.mask->is_block() ? Format::Bsr : Format::Dense;
  if (nm) {
    CompressSpec s;
    if (std::sscanf(nm, "nm:%ld:%ld", &s.N, &s.M) != 2 || s.M < 2) return Format::Dense;
    return weight_geom(n.param("weight").shape()).I % s.M == 0 ? Format::NM : Format::Dense;
  }
  if (p.rfind("tw:", 0) == 0 || p.rfind("tvw:", 0) == 0 || p == "channel") return Format::TW;
  return Format::Dense;
}

CompressSpec spec_for(const Node& n, Format format) {
  CompressSpec s;
  s.format = format;
  const std::string pattern = n.mask ? n.mask->pattern : "";
  const WeightGeom g = weight_geom(n.param("weight").shape());
  switch (format) {
    case Format::Dense:
      break;
    case Format::Bsr:
      if (n.mask && n.mask->is_block()) s.R = n.mask->block_rows, s.C = n.mask->block_cols;
      break;
    case Format::NM: {
      const char* nm = nm_part(pattern);
      if (!nm || std::sscanf(nm, "nm:%ld:%ld", &s.N, &s.M) != 2)
        fail("layer '{}' is not N:M-pruned (pattern '{}'): cannot store it as nm", n.name,
             pattern.empty() ? "none" : pattern);
      if (s.N < 1 || s.M < 2 || s.N > s.M) fail("layer '{}': bad N:M pattern '{}'", n.name, pattern);
      if (g.I % s.M)
        fail("layer '{}': {} input channels are not a multiple of M = {}: cannot store it as nm", n.name, g.I, s.M);
      break;
    }
    case Format::TW:
      if (pattern.rfind("tw:", 0) == 0 || pattern.rfind("tvw:", 0) == 0) {
        long gw = 0;
        if (std::sscanf(pattern.c_str() + pattern.find(':') + 1, "%ld", &gw) == 1 && gw > 0) s.G = gw;
      }
      if (n.mask && n.mask->is_tiled()) {
        s.column_tile = n.mask->column_tile.data();
        s.tile_rows = n.mask->tile_rows.data();
        s.tiles = n.mask->tiles();
      }
      break;
  }
  return s;
}

namespace {

// kept(i): the mask keeps position i (no mask: the weight is nonzero).
template <typename T>
struct Kept {
  const T* w;
  const uint8_t* keep;
  bool operator()(int64_t i) const { return keep ? keep[i] != 0 : w[i] != T(0); }
};

template <typename T>
CompactLayer compress_bsr(const T* w, const WeightGeom& g, Kept<T> kept, int64_t R, int64_t C) {
  CompactLayer l;
  l.R = R, l.C = C;
  const int64_t win = g.kh * g.kw;
  // The blocks with a kept position (with no mask: a nonzero weight).
  const BlockGrid grid = kept.keep ? block_grid(kept.keep, g.O, win, g.I, R, C) : block_grid(w, g.O, win, g.I, R, C);
  grid.to_csr(l.row_ptr, l.col_idx);
  std::vector<T> vals;
  for (int64_t br = 0; br < grid.rows; ++br)
    for (int32_t j = l.row_ptr[static_cast<size_t>(br)]; j < l.row_ptr[static_cast<size_t>(br) + 1]; ++j) {
      const int64_t bc = l.col_idx[static_cast<size_t>(j)];
      // Block layout [kh, kw, R, C]: for each window position an R x C
      // row-major matrix (output rows, input columns), zero-padded at edges.
      const size_t base = vals.size();
      vals.resize(base + static_cast<size_t>(win * R * C), T(0));
      for (int64_t p = 0; p < win; ++p)
        for (int64_t r = 0; r < R && br * R + r < g.O; ++r)
          for (int64_t c = 0; c < C && bc * C + c < g.I; ++c)
            vals[base + static_cast<size_t>((p * R + r) * C + c)] = w[((br * R + r) * win + p) * g.I + bc * C + c];
    }
  l.values = std::move(vals);
  return l;
}

template <typename T>
CompactLayer compress_nm(const T* w, const WeightGeom& g, Kept<T> kept, int64_t N, int64_t M) {
  CompactLayer l;
  l.N = N, l.M = M;
  const int bits = l.index_bits();
  const int64_t groups = g.O * g.kh * g.kw * (g.I / M);
  std::vector<T> vals(static_cast<size_t>(groups * N));
  l.nm_index.assign(static_cast<size_t>((groups * N * bits + 7) / 8), 0);
  std::vector<int64_t> pos;
  for (int64_t q = 0; q < groups; ++q) {
    const int64_t base = q * M;
    pos.clear();
    for (int64_t j = 0; j < M; ++j)
      if (kept(base + j)) pos.push_back(j);
    if (static_cast<int64_t>(pos.size()) > N) {
      const int64_t row = base / g.I, i0 = base % g.I;
      fail("{} of {} weights kept in the group of input channels {}..{} of output channel {}: not {}:{}", pos.size(), M,
           i0, i0 + M - 1, row / (g.kh * g.kw), N, M);
    }
    // Filler slots (fewer than N kept) take the lowest unused positions, so
    // the slots of a group are distinct and ascending.
    for (int64_t j = 0; static_cast<int64_t>(pos.size()) < N; ++j)
      if (std::find(pos.begin(), pos.end(), j) == pos.end()) pos.push_back(j);
    std::sort(pos.begin(), pos.end());
    for (int64_t s = 0; s < N; ++s) {
      const int64_t slot = q * N + s;
      vals[static_cast<size_t>(slot)] = w[base + pos[s]];
      for (int b = 0; b < bits; ++b)
        if ((pos[s] >> b) & 1) {
          const int64_t bit = slot * bits + b;
          l.nm_index[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(1u << (bit % 8));
        }
    }
  }
  l.values = std::move(vals);
  return l;
}

// The tiles bsp prune recorded: tile t gathers the rows tile_rows[t] keeps
// and scatters to the columns column_tile assigns it, in increasing order.
template <typename T>
CompactLayer compress_tw_tiled(const T* w, const WeightGeom& g, const CompressSpec& s) {
  CompactLayer l;
  l.G = s.G;
  const int64_t K = g.K();
  std::vector<T> vals;
  l.tile_row_ptr.push_back(0);
  l.tile_col_ptr.push_back(0);
  for (int64_t t = 0; t < s.tiles; ++t) {
    const size_t c0 = l.tile_cols.size(), r0 = l.tile_rows.size();
    for (int64_t o = 0; o < g.O; ++o)
      if (s.column_tile[o] == t) l.tile_cols.push_back(static_cast<int32_t>(o));
    for (int64_t k = 0; k < K; ++k)
      if (s.tile_rows[t * K + k]) l.tile_rows.push_back(static_cast<int32_t>(k));
    for (size_t i = r0; i < l.tile_rows.size(); ++i)
      for (size_t j = c0; j < l.tile_cols.size(); ++j) vals.push_back(w[l.tile_cols[j] * K + l.tile_rows[i]]);
    l.tile_row_ptr.push_back(static_cast<int32_t>(l.tile_rows.size()));
    l.tile_col_ptr.push_back(static_cast<int32_t>(l.tile_cols.size()));
  }
  l.values = std::move(vals);
  return l;
}

template <typename T>
CompactLayer compress_tw(const T* w, const WeightGeom& g, Kept<T> kept, int64_t G) {
  CompactLayer l;
  l.G = G;
  const int64_t K = g.K();
  // Surviving output channels (any kept weight), cut into tiles of G in order.
  std::vector<int32_t> cols;
  for (int64_t o = 0; o < g.O; ++o)
    for (int64_t k = 0; k < K; ++k)
      if (kept(o * K + k)) {
        cols.push_back(static_cast<int32_t>(o));
        break;
      }
  std::vector<T> vals;
  l.tile_row_ptr.push_back(0);
  l.tile_col_ptr.push_back(0);
  for (size_t t0 = 0; t0 < cols.size(); t0 += static_cast<size_t>(G)) {
    const size_t t1 = std::min(cols.size(), t0 + static_cast<size_t>(G));
    const size_t row0 = l.tile_rows.size();
    for (int64_t k = 0; k < K; ++k)
      for (size_t j = t0; j < t1; ++j)
        if (kept(cols[j] * K + k)) {
          l.tile_rows.push_back(static_cast<int32_t>(k));
          break;
        }
    for (size_t i = row0; i < l.tile_rows.size(); ++i)
      for (size_t j = t0; j < t1; ++j) vals.push_back(w[cols[j] * K + l.tile_rows[i]]);
    l.tile_cols.insert(l.tile_cols.end(), cols.begin() + static_cast<ptrdiff_t>(t0),
                       cols.begin() + static_cast<ptrdiff_t>(t1));
    l.tile_row_ptr.push_back(static_cast<int32_t>(l.tile_rows.size()));
    l.tile_col_ptr.push_back(static_cast<int32_t>(l.tile_cols.size()));
  }
  l.values = std::move(vals);
  return l;
}

}  // namespace

template <typename T>
CompactLayer compress(const T* w, const Shape& shape, const uint8_t* keep, const CompressSpec& spec) {
  const WeightGeom g = weight_geom(shape);
  Kept<T> kept{w, keep};
  CompactLayer l;
  switch (spec.format) {
    case Format::Dense:
      l.values = std::vector<T>(w, w + g.numel());
      break;
    case Format::Bsr:
      l = compress_bsr(w, g, kept, spec.R, spec.C);
      break;
    case Format::NM:
      if (spec.N < 1 || spec.M < 2 || spec.N > spec.M || g.I % spec.M)
        fail("cannot store {} input channels as {}:{}", g.I, spec.N, spec.M);
      l = compress_nm(w, g, kept, spec.N, spec.M);
      break;
    case Format::TW:
      if (spec.G < 1) fail("tw tile width {}", spec.G);
      l = spec.column_tile ? compress_tw_tiled(w, g, spec) : compress_tw(w, g, kept, spec.G);
      break;
  }
  l.format = spec.format;
  l.dtype = std::is_same_v<T, float> ? DType::FP32 : std::is_same_v<T, int8_t> ? DType::Int8 : DType::BF16;
  l.weight_shape = shape;
  return l;
}

template <typename T>
std::vector<T> expand(const CompactLayer& l) {
  const WeightGeom g = l.geom();
  const std::vector<T>& v = l.vals<T>();
  std::vector<T> w(static_cast<size_t>(g.numel()), T(0));
  const int64_t win = g.kh * g.kw, K = g.K();
  switch (l.format) {
    case Format::Dense:
      w = v;
      break;
    case Format::Bsr:
      for (int64_t br = 0; br < l.block_rows(); ++br)
        for (int32_t j = l.row_ptr[br]; j < l.row_ptr[br + 1]; ++j) {
          const int64_t bc = l.col_idx[j];
          const T* blk = v.data() + static_cast<size_t>(j) * static_cast<size_t>(win * l.R * l.C);
          for (int64_t p = 0; p < win; ++p)
            for (int64_t r = 0; r < l.R && br * l.R + r < g.O; ++r)
              for (int64_t c = 0; c < l.C && bc * l.C + c < g.I; ++c)
                w[static_cast<size_t>(((br * l.R + r) * win + p) * g.I + bc * l.C + c)] = blk[(p * l.R + r) * l.C + c];
        }
      break;
    case Format::NM: {
      const int bits = l.index_bits();
      const int64_t groups = g.numel() / l.M;
      for (int64_t q = 0; q < groups; ++q)
        for (int64_t s = 0; s < l.N; ++s) {
          const int64_t slot = q * l.N + s;
          int64_t pos = 0;
          for (int b = 0; b < bits; ++b) {
            const int64_t bit = slot * bits + b;
            pos |= static_cast<int64_t>((l.nm_index[static_cast<size_t>(bit / 8)] >> (bit % 8)) & 1u) << b;
          }
          if (pos >= l.M) fail("nm position {} out of range", pos);
          w[static_cast<size_t>(q * l.M + pos)] = v[static_cast<size_t>(slot)];
        }
      break;
    }
    case Format::TW: {
      size_t off = 0;
      for (int64_t t = 0; t < l.tiles(); ++t) {
        const int32_t r0 = l.tile_row_ptr[t], r1 = l.tile_row_ptr[t + 1];
        const int32_t c0 = l.tile_col_ptr[t], c1 = l.tile_col_ptr[t + 1];
        for (int32_t i = r0; i < r1; ++i)
          for (int32_t j = c0; j < c1; ++j) w[static_cast<size_t>(l.tile_cols[j] * K + l.tile_rows[i])] = v[off++];
      }
      break;
    }
  }
  return w;
}

template CompactLayer compress<float>(const float*, const Shape&, const uint8_t*, const CompressSpec&);
template CompactLayer compress<uint16_t>(const uint16_t*, const Shape&, const uint8_t*, const CompressSpec&);
template CompactLayer compress<int8_t>(const int8_t*, const Shape&, const uint8_t*, const CompressSpec&);
template std::vector<float> expand<float>(const CompactLayer&);
template std::vector<uint16_t> expand<uint16_t>(const CompactLayer&);
template std::vector<int8_t> expand<int8_t>(const CompactLayer&);

}  // namespace bsp::compact
