// The weights a conv stage multiplies with (lower.hpp: Stage::groups,
// Stage::affine) and the 8x8 blocks of them it stores.
#include <algorithm>

#include "aie2/codegen.hpp"
#include "compact/int8.hpp"
#include "core/error.hpp"
#include "sparsity/blocks.hpp"
#include "sparsity/pattern.hpp"

namespace bsp::aie2 {

namespace {

// Calls f(o, t, c, src) for every weight of the stage's expanded weight
// [Cout, taps, Cin] that its node holds: output channel o, tap t, input
// channel c, src the index into the node's own weight ([Cout, taps,
// Cin/groups]; a lone batchnorm's [C]: one per channel, on the diagonal).
template <typename F>
void for_each_weight(const Stage& st, F&& f) {
  const int64_t taps = st.kh * st.kw;
  if (st.affine) {
    for (int64_t c = 0; c < st.Cout; ++c) f(c, 0, c, c);
    return;
  }
  const int64_t cin_g = st.Cin / st.groups, cout_g = st.Cout / st.groups;
  for (int64_t o = 0; o < st.Cout; ++o) {
    const int64_t c0 = o / cout_g * cin_g;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t i = 0; i < cin_g; ++i) f(o, t, c0 + i, (o * taps + t) * cin_g + i);
  }
}

}  // namespace

Tensor stage_weight(const Stage& st, const Model& m) {
  const Node& n = m.nodes[static_cast<size_t>(st.conv_node)];
  if (st.groups == 1 && !st.affine) return n.param("weight").clone();
  const int64_t taps = st.kh * st.kw;
  Tensor w({st.Cout, st.kh, st.kw, st.Cin});
  const float* src = st.affine ? nullptr : n.param("weight").data();
  for_each_weight(st, [&](int64_t o, int64_t t, int64_t c, int64_t s) {
    w[static_cast<size_t>((o * taps + t) * st.Cin + c)] = src ? src[s] : 1.0f;  // a batchnorm: identity
  });
  return w;
}

Array<int8_t> stage_weight_i8(const Stage& st, const q8::QNode& qn) {
  if (st.groups == 1 && !st.affine) return qn.weight.clone();
  const int64_t taps = st.kh * st.kw;
  Array<int8_t> w({st.Cout, st.kh, st.kw, st.Cin});
  for_each_weight(st, [&](int64_t o, int64_t t, int64_t c, int64_t s) {
    w[static_cast<size_t>((o * taps + t) * st.Cin + c)] = qn.weight[static_cast<size_t>(s)];
  });
  return w;
}

bool two_of_four(const Stage& st, const Model& m) {
  const Node& n = m.nodes[static_cast<size_t>(st.conv_node)];
  if (!n.mask || n.mask->is_block()) return false;
  Pattern p;
  try {
    p = parse_pattern(n.mask->pattern);
  } catch (const Error&) {
    return false;
  }
  if (p.family == PatternFamily::TVW) {
    // tvw's 2:4 runs along each tile's kept rows, which are aligned groups of
    // 4 input channels only where the tile keeps whole runs of them: the
    // layer qualifies when its weights happen to keep the rule everywhere.
    const Tensor& w = n.param("weight");
    const int64_t cin = st.Cin, rows = static_cast<int64_t>(w.size()) / cin;
    const float* v = w.data();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < cin; g += 4) {
        int nz = 0;
        for (int64_t i = g; i < std::min(cin, g + 4); ++i) nz += v[r * cin + i] != 0.0f;
        if (nz > 2) return false;
      }
    return true;
  }
  if (p.family != PatternFamily::NM && !p.then_nm) return false;
  // Groups of M aligned at multiples of M along Cin (a multiple of M, as the
  // reader checks) with at most N ones: an aligned group of 4 lies inside
  // one group (M a multiple of 4) or covers 4 / M whole ones (M = 1, 2, 4).
  if (p.m % 4 == 0) return p.n <= 2;
  return 4 % p.m == 0 && p.n * (4 / p.m) <= 2;
}

Occupancy block_occupancy(const Stage& st, const Model& m, bool dense) {
  const Node& n = m.nodes[static_cast<size_t>(st.conv_node)];
  const int64_t cout = st.Cout, cin = st.Cin, taps = st.kh * st.kw;
  Occupancy o;
  o.rows = (cout + kBlock - 1) / kBlock;
  o.cols = (cin + kBlock - 1) / kBlock;
  o.bits.assign(static_cast<size_t>(o.rows * o.cols), 0);
  if (st.groups == 1 && !st.affine) {
    if (dense) {
      std::fill(o.bits.begin(), o.bits.end(), 1);
    } else if (n.mask && n.mask->is_block() && n.mask->block_rows == kBlock && n.mask->block_cols == kBlock) {
      for (size_t i = 0; i < o.bits.size(); ++i) o.bits[i] = n.mask->bits[i] ? 1 : 0;
    } else {  // any other pattern: a block is stored when any of its weights is nonzero
      o.bits = block_grid(n.param("weight").data(), cout, taps, cin, kBlock, kBlock).bits;
    }
  } else {
    // The blocks that meet a group (dense), or that hold a nonzero weight.
    const float* w = st.affine ? nullptr : n.param("weight").data();
    for_each_weight(st, [&](int64_t oc, int64_t, int64_t c, int64_t s) {
      if (dense || !w || w[s] != 0.0f) o.bits[static_cast<size_t>(oc / kBlock * o.cols + c / kBlock)] = 1;
    });
  }
  o.row_nnz.assign(static_cast<size_t>(o.rows), 0);
  o.prefix.assign(static_cast<size_t>((o.rows + 1) * (o.cols + 1)), 0);
  for (int64_t r = 0; r < o.rows; ++r)
    for (int64_t c = 0; c < o.cols; ++c) {
      int64_t v = o.at(r, c);
      o.row_nnz[static_cast<size_t>(r)] += v;
      o.nnz += v;
      o.prefix[static_cast<size_t>((r + 1) * (o.cols + 1) + c + 1)] =
          v + o.prefix[static_cast<size_t>(r * (o.cols + 1) + c + 1)] +
          o.prefix[static_cast<size_t>((r + 1) * (o.cols + 1) + c)] - o.prefix[static_cast<size_t>(r * (o.cols + 1) + c)];
    }
  return o;
}

}  // namespace bsp::aie2
