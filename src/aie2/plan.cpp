#include "aie2/plan.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.hpp"

namespace bsp::aie2 {

// The smallest weight part sent straight from DDR into the cores (w_direct).
constexpr int64_t kMinDirectBytes = 1024;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align64(int64_t x) { return (x + 63) & ~int64_t(63); }

// Per block row (8 output channels) its work weight.
std::vector<int64_t> row_weights(const PlanContext& c) {
  const int64_t nb = ceil_div(c.st.Cout, kBlock);
  std::vector<int64_t> w(static_cast<size_t>(nb), 1);
  if (c.st.kind == StageKind::Conv && !c.occ.dense())
    for (int64_t b = 0; b < nb; ++b) w[static_cast<size_t>(b)] = c.occ.row_nnz[static_cast<size_t>(b)];
  else if (c.st.kind == StageKind::Conv)
    for (int64_t b = 0; b < nb; ++b) w[static_cast<size_t>(b)] = c.occ.cols;
  return w;
}

}  // namespace

std::vector<int64_t> linear_partition(const std::vector<int64_t>& w, int64_t parts) {
  const int64_t n = static_cast<int64_t>(w.size());
  parts = std::max<int64_t>(1, std::min(parts, n));
  int64_t lo = 0, hi = 0;
  for (int64_t x : w) {
    lo = std::max(lo, x);
    hi += x;
  }
  // Greedy: fill each group up to `cap` while leaving enough items for the
  // remaining groups; feasible when all items are placed.
  auto fill = [&](int64_t cap, std::vector<int64_t>* bounds) {
    int64_t i = 0;
    if (bounds) bounds->assign(1, 0);
    for (int64_t g = 0; g < parts; ++g) {
      const int64_t left_groups = parts - g - 1;
      int64_t sum = 0;
      int64_t start = i;
      while (i < n - left_groups && (i == start || sum + w[static_cast<size_t>(i)] <= cap)) {
        sum += w[static_cast<size_t>(i)];
        ++i;
        if (sum > cap) break;
      }
      if (sum > cap) return false;
      if (bounds) bounds->push_back(i);
    }
    return i == n;
  };
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (fill(mid, nullptr))
      hi = mid;
    else
      lo = mid + 1;
  }
  std::vector<int64_t> b;
  if (!fill(lo, &b)) fail("internal: linear partition failed");
  return b;
}

namespace {

// Moves single block rows between the contiguous groups `b` (boundaries into
// w) while that lowers the heaviest group: row a of the heaviest group trades
// places with a lighter row x of another group, moving w[a] - w[x] blocks. Group sizes (the channels per core) stay; each trade
// adds at most a few runs to the cores' output writes. Returns the row order
// (empty when no trade helps).
std::vector<int64_t> trade_rows(const std::vector<int64_t>& w, const std::vector<int64_t>& b) {
  const int64_t nb = static_cast<int64_t>(w.size()), G = static_cast<int64_t>(b.size()) - 1;
  thread_local std::vector<int64_t> grp, sum;
  grp.assign(static_cast<size_t>(nb), 0);
  sum.assign(static_cast<size_t>(G), 0);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t r = b[static_cast<size_t>(g)]; r < b[static_cast<size_t>(g) + 1]; ++r) {
      grp[static_cast<size_t>(r)] = g;
      sum[static_cast<size_t>(g)] += w[static_cast<size_t>(r)];
    }
  // Members of each group (rows, in any order), kept up to date by the trades.
  thread_local std::vector<int64_t> rows;
  rows.resize(static_cast<size_t>(nb));
  for (int64_t r = 0; r < nb; ++r) rows[static_cast<size_t>(r)] = r;
  bool traded = false;
  for (int64_t iter = 0; iter < 4 * G + 16; ++iter) {
    int64_t g = 0;
    for (int64_t h = 1; h < G; ++h)
      if (sum[static_cast<size_t>(h)] > sum[static_cast<size_t>(g)]) g = h;
    const int64_t top = sum[static_cast<size_t>(g)];
    int64_t best = top, ba = -1, bx = -1;
    for (int64_t h = 0; h < G; ++h) {
      const int64_t sh = sum[static_cast<size_t>(h)];
      if (h == g || sh + 1 >= top) continue;
      for (int64_t ia = b[static_cast<size_t>(g)]; ia < b[static_cast<size_t>(g) + 1]; ++ia) {
        const int64_t a = rows[static_cast<size_t>(ia)], wa = w[static_cast<size_t>(a)];
        for (int64_t ix = b[static_cast<size_t>(h)]; ix < b[static_cast<size_t>(h) + 1]; ++ix) {
          const int64_t x = rows[static_cast<size_t>(ix)], d = wa - w[static_cast<size_t>(x)];
          if (d <= 0) continue;
          const int64_t m = std::max(top - d, sh + d);
          if (m < best) best = m, ba = ia, bx = ix;
        }
      }
    }
    if (ba < 0) break;
    const int64_t a = rows[static_cast<size_t>(ba)], x = rows[static_cast<size_t>(bx)];
    const int64_t d = w[static_cast<size_t>(a)] - w[static_cast<size_t>(x)];
    sum[static_cast<size_t>(grp[static_cast<size_t>(a)])] -= d;
    sum[static_cast<size_t>(grp[static_cast<size_t>(x)])] += d;
    std::swap(grp[static_cast<size_t>(a)], grp[static_cast<size_t>(x)]);
    std::swap(rows[static_cast<size_t>(ba)], rows[static_cast<size_t>(bx)]);
    traded = true;
  }
  if (!traded) return {};
  // Each group's rows in their natural order: the fewest runs.
  std::vector<int64_t> out(rows.begin(), rows.end());
  for (int64_t g = 0; g < G; ++g)
    std::sort(out.begin() + b[static_cast<size_t>(g)], out.begin() + b[static_cast<size_t>(g) + 1]);
  return out;
}

}  // namespace

std::vector<int64_t> balanced_groups(const PlanContext& c, int64_t pc, int64_t J, std::vector<int64_t>* rows) {
  const Stage& st = c.st;
  if (rows) rows->clear();
  if (st.kind == StageKind::Softmax) return {0, st.Cout};
  std::vector<int64_t> w = row_weights(c);
  const int64_t nb = static_cast<int64_t>(w.size());
  const int64_t groups = pc * J;
  std::vector<int64_t> b;
  if (groups <= nb) {
    // Sparse convs with whole block rows may also trade rows between groups.
    if (rows && groups > 1 && st.kind == StageKind::Conv && !c.occ.dense() && st.Cout % kBlock == 0) {
      auto it = c.occ.traded.find(groups);
      if (it == c.occ.traded.end()) {
        b = linear_partition(w, groups);
        it = c.occ.traded.emplace(groups, std::make_pair(b, trade_rows(w, b))).first;
      }
      b = it->second.first;
      *rows = it->second.second;
    } else {
      b = linear_partition(w, groups);
    }
  } else {
    // More groups than block rows: one row each, the rest empty (cores idle
    // in those iterations). Spread the empty groups over the parts.
    b.assign(1, 0);
    for (int64_t g = 0; g < groups; ++g) b.push_back(std::min(nb, (g + 1) * nb / groups));
  }
  std::vector<int64_t> out;
  out.reserve(b.size());
  for (int64_t x : b) out.push_back(std::min(st.Cout, x * kBlock));
  return out;
}

bool spatial_grid(int64_t Ho, int64_t Wo, int64_t ps, int64_t& ny, int64_t& nx) {
  int64_t best = -1;
  for (int64_t x = 1; x <= ps; ++x) {
    if (ps % x) continue;
    int64_t y = ps / x;
    if (x > Wo || y > Ho) continue;
    int64_t area = ceil_div(Ho, y) * ceil_div(Wo, x);
    // Ties: the wider split (output width across columns).
    if (best < 0 || area < best || (area == best && x > nx)) {
      best = area;
      ny = y;
      nx = x;
    }
  }
  return best >= 0;
}

namespace {
// An int8 lookup table reads 4 entries per cycle: AIE-ML's parallel lookup
// (aie::parallel_lookup over an aie::lut of 4 parallel accesses, the table
// kept in 4 copies in two banks; UG1603 "Lookup Tables and Linear
// Approximation", AIE API "Lookup Tables"). An assumption for fp32, which
// computes the function: the vector operations per element below (sigmoid
// like softmax's exp, hardsigmoid a multiply-add and a clamp, hardswish one
// more multiply).
constexpr double kLutLookupsPerCycle = 4;
double fn_ops(EltFn fn) {
  switch (fn) {
    case EltFn::Sigmoid: return 8;
    case EltFn::HardSigmoid: return 2;
    case EltFn::HardSwish: return 3;
    default: return 1;
  }
}

// kind: 0 conv, 1 pool, 2 eltwise, 3 softmax; fn the eltwise function;
// pairs >= 0: a conv with the sparse operand, of that many compressed unit
// pairs (each one sparse 4x16x8 multiply per 4 positions: 16 x 8
// dense-equivalent MACs at macs_per_cycle.int8_sparse).
int64_t cycles_of(const Hardware& hw, DType t, int kind, EltFn fn, int64_t kh, int64_t kw, int64_t n_in,
                  int64_t positions, int64_t channels, int64_t cin, int64_t nnz, int64_t pairs) {
  if (positions <= 0 || channels <= 0) return 0;
  const double eff = hw.compute_efficiency;
  double cycles = 0;
  if (kind == 0 && pairs >= 0) {
    if (t != DType::Int8 || hw.macs_int8_sparse < 1) fail("the target has no int8 sparse operand (macs_per_cycle.int8_sparse)");
    const int64_t pos = ceil_div(positions, hw.vec_positions) * hw.vec_positions;
    const double macs = static_cast<double>(pos) * static_cast<double>(pairs) * 2 * kBlock * kBlock;
    cycles = macs / (static_cast<double>(hw.macs_int8_sparse) * eff);
  } else if (kind == 0) {
    const int64_t pos = ceil_div(positions, hw.vec_positions) * hw.vec_positions;
    double macs;
    if (cin < hw.vec_cin) {
      // Few input channels (a first layer): the kernel packs the window's
      // columns into the reduction dimension.
      int64_t k = kh * ceil_div(kw * cin, hw.vec_cin) * hw.vec_cin;
      macs = static_cast<double>(pos) * static_cast<double>(ceil_div(channels, hw.vec_cout) * hw.vec_cout) * k;
    } else {
      macs = static_cast<double>(pos) * static_cast<double>(nnz) * kBlock * kBlock * kh * kw;
    }
    cycles = macs / (static_cast<double>(hw.macs_per_cycle(t)) * eff);
  } else if (kind == 2 && t == DType::Int8 && fn != EltFn::None && fn != EltFn::Mul) {
    cycles = static_cast<double>(positions) * static_cast<double>(channels) / (kLutLookupsPerCycle * eff);
  } else {
    const double es = static_cast<double>(dtype_bytes(t));
    double elems = static_cast<double>(positions) * static_cast<double>(channels);
    if (kind == 1)
      elems *= static_cast<double>(kh * kw);
    else if (kind == 2)
      elems *= static_cast<double>(std::max<int64_t>(1, n_in)) * fn_ops(fn);
    else
      elems *= 8;  // softmax: max, exp, sum and scale per element
    cycles = elems * es / (static_cast<double>(hw.vec_bytes_per_cycle) * eff);
  }
  // A kernel call read from a file can claim any sizes: past 2^62 cycles
  // the conversion to int64 would be undefined.
  if (!(cycles < 4.6e18)) fail("a kernel call of {:.3g} cycles", cycles);
  return static_cast<int64_t>(std::ceil(cycles)) + hw.kernel_overhead_cycles;
}

EltFn kernel_fn(const KernelDecl& k) {
  if (k.flags & kKSigmoid) return EltFn::Sigmoid;
  if (k.flags & kKHardSigmoid) return EltFn::HardSigmoid;
  if (k.flags & kKHardSwish) return EltFn::HardSwish;
  if (k.flags & kKMul) return EltFn::Mul;
  return EltFn::None;
}
}  // namespace

int64_t comp_cycles(const Hardware& hw, DType t, const Stage& st, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz, int64_t pairs) {
  int kind = st.kind == StageKind::Conv ? 0 : st.kind == StageKind::Pool ? 1 : st.kind == StageKind::Eltwise ? 2 : 3;
  return cycles_of(hw, t, kind, st.fn, st.kh, st.kw, static_cast<int64_t>(st.in.size()), positions, channels, cin, nnz,
                   pairs);
}

int64_t comp_cycles(const Hardware& hw, DType t, const KernelDecl& k, int64_t positions, int64_t channels, int64_t cin,
                    int64_t nnz, int64_t rows, int64_t pairs) {
  int kind = k.kind == KKind::Conv ? 0 : (k.kind == KKind::MaxPool || k.kind == KKind::AvgPool) ? 1
             : k.kind == KKind::Eltwise ? 2 : 3;
  return cycles_of(hw, t, kind, kernel_fn(k), rows >= 0 ? rows : k.kh, k.kw, k.n_in, positions, channels, cin, nnz,
                   pairs);
}

namespace {

// Weight chunks [pc][j * K + k] (output channels of chunk j x input
// channels of pass k), their stored blocks and bytes; the bytes per part.
void split_chunks(const PlanContext& c, StagePlan& p) {
  const Stage& st = c.st;
  const Decision& d = p.d;
  const bool conv = st.kind == StageKind::Conv;
  p.chunks.resize(static_cast<size_t>(conv ? d.pc : 0));
  p.chunk_max = 0;
  const bool sparse = !c.occ.dense();
  const bool s24 = c.occ.sparse24;
  for (int64_t q = 0; q < d.pc && conv; ++q) {
    auto& list = p.chunks[static_cast<size_t>(q)];
    list.clear();
    for (int64_t j = 0; j < p.J; ++j) {
      int64_t co0 = d.cbounds[static_cast<size_t>(q * p.J + j)], co1 = d.cbounds[static_cast<size_t>(q * p.J + j + 1)];
      for (int64_t k = 0; k < p.K; ++k) {
        const int64_t ci0 = k * d.ci_t, ci1 = std::min(st.Cin, (k + 1) * d.ci_t);
        int64_t nnz = 0, pairs = 0, bytes = 0;
        if (co1 > co0) {
          const int64_t r0 = co0 / kBlock, r1 = ceil_div(co1, kBlock);
          const int64_t b0 = ci0 / kBlock, b1 = ceil_div(ci1, kBlock);
          nnz = rows_count(c.occ, d, r0, r1, b0, b1);
          if (s24) {
            pairs = rows_pairs(c.occ, d, r0, r1, b0, b1, st.kh * st.kw);
            bytes = chunk_bytes_24(co1 - co0, r1 - r0, nnz, pairs);
          } else {
            bytes = chunk_bytes(c.dtype, sparse, co1 - co0, r1 - r0, nnz, st.kh, st.kw);
          }
        }
        p.chunk_max = std::max(p.chunk_max, bytes);
        list.push_back(Chunk{co0, co1, ci0, ci1, nnz, pairs, bytes, 0});
      }
    }
  }
  p.part_bytes.assign(static_cast<size_t>(conv ? d.pc : 0), 0);
  for (int64_t q = 0; q < d.pc && conv; ++q)
    for (const Chunk& ch : p.chunks[static_cast<size_t>(q)]) p.part_bytes[static_cast<size_t>(q)] += ch.bytes;
}

// The compute of chunk index j waits for the slowest part. Over the K
// input passes of a chunk the parts are coupled: each pass's input tile is
// broadcast to all of them and can only replace a slot that every one has
// finished with, so a part runs at most a slot ahead of the others. The
// truth lies between the parts running free (the most blocks any part has
// over the K passes) and in lockstep (per pass the most blocks of any
// part, summed): the midpoint, which tracks the timed programs best
// (mean |log(analytic/timed)| over 2976 stages 0.037 free, 0.032 lockstep,
// 0.031 midpoint).
void split_worst(const PlanContext& c, StagePlan& p) {
  const Decision& d = p.d;
  const bool conv = c.st.kind == StageKind::Conv;
  p.worst_nnz.assign(static_cast<size_t>(p.J), 0);
  p.worst_pairs.assign(c.occ.sparse24 ? static_cast<size_t>(p.J) : 0, 0);
  p.worst_ch.assign(static_cast<size_t>(p.J), 0);
  // The same midpoint for the stored blocks and, with the sparse operand,
  // the compressed pairs (what its compute counts).
  auto worst = [&](int64_t j, int64_t Chunk::*field) {
    int64_t free_run = 0, lockstep = 0;
    for (int64_t q = 0; q < d.pc; ++q) {
      int64_t n = 0;
      for (int64_t k = 0; k < p.K && conv; ++k) n += p.chunks[static_cast<size_t>(q)][static_cast<size_t>(j * p.K + k)].*field;
      free_run = std::max(free_run, n);
    }
    for (int64_t k = 0; k < p.K && conv; ++k) {
      int64_t most = 0;
      for (int64_t q = 0; q < d.pc; ++q)
        most = std::max(most, p.chunks[static_cast<size_t>(q)][static_cast<size_t>(j * p.K + k)].*field);
      lockstep += most;
    }
    return (free_run + lockstep + 1) / 2;
  };
  for (int64_t j = 0; j < p.J; ++j) {
    for (int64_t q = 0; q < d.pc; ++q) {
      const int64_t co0 = d.cbounds[static_cast<size_t>(q * p.J + j)], co1 = d.cbounds[static_cast<size_t>(q * p.J + j + 1)];
      p.worst_ch[static_cast<size_t>(j)] = std::max(p.worst_ch[static_cast<size_t>(j)], co1 - co0);
    }
    p.worst_nnz[static_cast<size_t>(j)] = worst(j, &Chunk::nnz);
    if (c.occ.sparse24) p.worst_pairs[static_cast<size_t>(j)] = worst(j, &Chunk::pairs);
  }
}

// Work per core and balance.
void split_work(const PlanContext& c, StagePlan& p) {
  const Stage& st = c.st;
  const Decision& d = p.d;
  const bool conv = st.kind == StageKind::Conv;
  const int64_t cores = d.ps * d.pc;
  p.core_macs.assign(static_cast<size_t>(cores), 0);
  thread_local std::vector<int64_t> per_pos;  // [pc] MACs per output position of each channel part
  per_pos.assign(static_cast<size_t>(d.pc), 0);
  for (int64_t q = 0; q < d.pc; ++q) {
    int64_t& m = per_pos[static_cast<size_t>(q)];
    const int64_t c0 = d.cbounds[static_cast<size_t>(q * p.J)], c1 = d.cbounds[static_cast<size_t>((q + 1) * p.J)];
    if (conv && c.occ.dense()) {
      m = (c1 - c0) * st.Cin * st.kh * st.kw;
    } else if (conv) {
      for (const Chunk& ch : p.chunks[static_cast<size_t>(q)]) m += ch.nnz * kBlock * kBlock * st.kh * st.kw;
    } else {
      m = (c1 - c0) * st.kh * st.kw;
    }
  }
  for (int64_t s = 0; s < d.ps; ++s) {
    const int64_t pos = p.rects[static_cast<size_t>(s)].h() * p.rects[static_cast<size_t>(s)].w();
    for (int64_t q = 0; q < d.pc; ++q)
      p.core_macs[static_cast<size_t>(core_index(d, s, q))] = pos * per_pos[static_cast<size_t>(q)];
  }
  int64_t mx = 0;
  double sum = 0;
  for (int64_t w : p.core_macs) {
    mx = std::max(mx, w);
    sum += static_cast<double>(w);
  }
  p.imbalance = sum > 0 ? static_cast<double>(mx) / (sum / static_cast<double>(cores)) : 1.0;
}

// The fields of a plan that follow from its split of the work alone (p.d.ps,
// ny, nx, pc, cbounds, rows, ci_t, and p.J, p.K), not from its tiles, loop
// order or weight residency: the rectangles, the weight chunks and their
// bytes per part and worst case per chunk index, the work per core and its
// imbalance, the channel runs. (The lists are cleared, not
// reassigned: a plan reused across candidates keeps their storage,
// choose_plan.)
void derive_split(const PlanContext& c, StagePlan& p) {
  const Stage& st = c.st;
  const Decision& d = p.d;
  p.rects.clear();
  for (int64_t s = 0; s < d.ps; ++s) {
    int64_t a = s / d.nx, b = s % d.nx;
    p.rects.push_back(Rect{split_at(st.Ho, d.ny, a), split_at(st.Ho, d.ny, a + 1), split_at(st.Wo, d.nx, b),
                           split_at(st.Wo, d.nx, b + 1)});
  }
  split_chunks(c, p);
  split_worst(c, p);
  split_work(c, p);
  // Output tiles (and residual operands) of a reordered conv travel in runs
  // of consecutive channels: one transfer per run.
  p.out_runs = 1;
  if (!d.rows.empty())
    for (size_t g = 1; g < d.cbounds.size(); ++g) {
      int64_t n = 0;
      for (int64_t r = d.cbounds[g - 1] / kBlock; r < ceil_div(d.cbounds[g], kBlock); ++r)
        n += r == d.cbounds[g - 1] / kBlock || d.rows[static_cast<size_t>(r)] != d.rows[static_cast<size_t>(r - 1)] + 1;
      p.out_runs = std::max(p.out_runs, n);
    }
}

// derive_split's fields from a plan of the same split.
void copy_split(const StagePlan& from, StagePlan& p) {
  p.rects = from.rects;
  p.chunks = from.chunks;
  p.chunk_max = from.chunk_max;
  p.part_bytes = from.part_bytes;
  p.worst_nnz = from.worst_nnz;
  p.worst_pairs = from.worst_pairs;
  p.worst_ch = from.worst_ch;
  p.core_macs = from.core_macs;
  p.imbalance = from.imbalance;
  p.out_runs = from.out_runs;
}

}  // namespace

namespace {

// One derive_plan call: the context, the plan being filled and the figures
// its steps pass on. Each step returns false (with the reason) when the
// plan does not fit, or cannot beat must_beat.
class Derivation {
 public:
  Derivation(const PlanContext& c, StagePlan& p, std::string* why, double must_beat)
      : c(c), p(p), hw(c.hw), st(c.st), d(p.d), es(dtype_bytes(c.dtype)), conv(st.kind == StageKind::Conv),
        why(why), must_beat(must_beat), ghz(hw.clock_ghz), ovh(static_cast<double>(hw.dma_overhead_cycles) / (ghz * 1e9)),
        n_in(st.in.size()), cores(d.ps * d.pc) {}

  bool run(const StagePlan* same_split) {
    if (!check_decision() || !tiles()) return false;
    // The split's rectangles, weight chunks, work per core and channel runs.
    if (same_split)
      copy_split(*same_split, p);
    else
      derive_split(c, p);
    if (!compute_time() || !core_memory()) return false;
    transfer_sizes();
    core_input_channels();
    if (!onchip_bound() || !memtile_buffers()) return false;
    assign_channels();
    estimate();
    return true;
  }

 private:
  // (A literal: most candidates are refused, and `why` reuses its storage.)
  bool no(const char* msg) {
    if (why) *why = msg;
    return false;
  }
  double stream_s(double bytes, double n) const { return bytes > 0 ? hw.stream_seconds(bytes) + n * ovh : 0.0; }
  double ddr_s(double bytes, double n) const { return bytes > 0 ? hw.ddr_seconds(bytes) + n * ovh : 0.0; }

  // The decision itself: parts, grid, channel boundaries, row order, passes.
  bool check_decision() {
    if (d.ps < 1 || d.pc < 1 || d.ps * d.pc > hw.cores()) return no("more parts than cores");
    if (d.ny * d.nx != d.ps || d.ny > st.Ho || d.nx > st.Wo) return no("bad spatial grid");
    if (d.cbounds.size() < 2 || (d.cbounds.size() - 1) % static_cast<size_t>(d.pc) != 0)
      return no("bad channel boundaries");
    if (d.cbounds.front() != 0 || d.cbounds.back() != st.Cout) return no("channel boundaries do not cover the output");
    for (size_t g = 1; g < d.cbounds.size(); ++g) {
      if (d.cbounds[g] < d.cbounds[g - 1]) return no("channel boundaries decrease");
      if (d.cbounds[g - 1] % kBlock && d.cbounds[g - 1] != st.Cout) return no("channel boundary not a multiple of 8");
    }
    if (d.th < 1 || d.tw < 1) return no("empty tile");
    if (!d.rows.empty()) {
      const int64_t nb = ceil_div(st.Cout, kBlock);
      if (!conv || st.Cout % kBlock || static_cast<int64_t>(d.rows.size()) != nb)
        return no("a block-row order for a layer without whole block rows");
      thread_local std::vector<char> seen;
      seen.assign(static_cast<size_t>(nb), 0);
      for (int64_t r : d.rows) {
        if (r < 0 || r >= nb || seen[static_cast<size_t>(r)]) return no("the block-row order is not a permutation");
        seen[static_cast<size_t>(r)] = 1;
      }
    }
    if (conv && (d.ci_t < 1 || (d.ci_t % kBlock && d.ci_t < st.Cin))) return no("bad input-channel pass");
    if (!conv && d.ci_t != 0 && pass_rows(st, d) == 0) return no("row passes for a stage that sums no whole map");
    return true;
  }

  // Tiles.
  bool tiles() {
    p.rh = ceil_div(st.Ho, d.ny);
    p.rw = ceil_div(st.Wo, d.nx);
    if (d.th > p.rh || d.tw > p.rw) return no("tile larger than the rectangle");
    p.ty = ceil_div(p.rh, d.th);
    p.tx = ceil_div(p.rw, d.tw);
    p.T = p.ty * p.tx;
    p.J = static_cast<int64_t>(d.cbounds.size() - 1) / d.pc;
    rows_pass = pass_rows(st, d);
    p.K = conv ? ceil_div(st.Cin, d.ci_t) : rows_pass > 0 ? ceil_div(st.H, rows_pass) : 1;
    p.subsample = subsampled_input(c);
    p.ih = rows_pass > 0 ? rows_pass : in_rows(c, d.th);
    p.iw = in_cols(c, d.tw);
    co_max = 0;
    for (size_t g = 1; g < d.cbounds.size(); ++g) co_max = std::max(co_max, d.cbounds[g] - d.cbounds[g - 1]);
    if (co_max == 0) return no("no output channels");
    cin_tile = conv ? std::min(d.ci_t, st.Cin) : co_max;
    return true;
  }

  // The analytic time: the busiest queue of every kind as the executor will
  // see it (streams are spread over the channels the way codegen does), plus
  // the latency of the first iteration. Tiles come in up to four sizes (full
  // and edge rows x full and edge columns); the largest rectangle sets the
  // pace. First the compute: lockstep over the channel chunks, so per chunk
  // index j the slowest part counts (p.worst_nnz, p.worst_ch).
  bool compute_time() {
    struct TileSize {
      int64_t h, w, count;
    };
    // (Fixed arrays and thread_local vectors: no allocation per candidate.)
    std::array<TileSize, 4> sizes{};
    size_t n_sizes = 0;
    {
      const std::pair<int64_t, int64_t> rows[2] = {{d.th, p.rh / d.th}, {p.rh % d.th, p.rh % d.th ? 1 : 0}};
      const std::pair<int64_t, int64_t> colsz[2] = {{d.tw, p.rw / d.tw}, {p.rw % d.tw, p.rw % d.tw ? 1 : 0}};
      for (auto [a, na] : rows)
        for (auto [b, nb] : colsz)
          if (na * nb > 0) sizes[n_sizes++] = {a, b, na * nb};
    }
    double comp = 0;
    for (size_t si = 0; si < n_sizes; ++si) {
      const TileSize& ts = sizes[si];
      double per_tile = 0;
      for (int64_t j = 0; j < p.J; ++j) {
        const int64_t ch = p.worst_ch[static_cast<size_t>(j)];
        if (ch == 0) continue;
        double cyc = static_cast<double>(comp_cycles(hw, c.dtype, st, ts.h * ts.w, ch, conv ? st.Cin : ch,
                                                     p.worst_nnz[static_cast<size_t>(j)],
                                                     p.worst_pairs.empty() ? -1 : p.worst_pairs[static_cast<size_t>(j)]) +
                                         (p.K - 1) * hw.kernel_overhead_cycles);
        per_tile += cyc;
        if (first_comp == 0) first_comp = cyc / static_cast<double>(p.K);
      }
      comp += per_tile * static_cast<double>(ts.count);
      in_tiles += static_cast<double>(ts.count * (rows_pass > 0 ? rows_pass : in_rows(c, ts.h)) * in_cols(c, ts.w) *
                                      cin_tile * es);
    }
    t_comp = comp / (ghz * 1e9);
    // The compute time alone bounds the estimate from below (as the on-chip
    // bound further down): a candidate that cannot beat must_beat stops here.
    if (t_comp >= must_beat) return no("slower than a plan already found");
    return true;
  }

  // Core memory: the same layout in every core; then its locks, and whether
  // weights go straight from DDR into it.
  bool core_memory() {
    const int64_t core_top = hw.core_memory;
    int64_t at = align64(hw.core_reserved);
    auto alloc = [&](Buffer& b, std::string name, int64_t slot, int64_t slots) {
      b.name = std::move(name);
      b.slot_bytes = align64(slot);
      b.slots = slots;
      b.addr = at;
      at += b.bytes();
    };
    p.core_in.assign(n_in, Buffer{});
    for (size_t k = 0; k < n_in; ++k)
      alloc(p.core_in[k], n_in == 1 ? "in" : "in" + std::to_string(k), p.ih * p.iw * cin_tile * es, 2);
    out_tile = d.th * d.tw * co_max * es;
    // What the loop order reuses: tiles outer with one input pass keep an
    // input tile across the chunks; chunks outer with one pass keep a weight
    // chunk across the tiles. Else each iteration (tile, chunk, pass) loads both.
    in_reuse = conv && d.order == 'A' && p.K == 1;
    w_reuse = d.order == 'B' && p.K == 1;
    // Weight chunks each core receives (a single load needs no second slot),
    // and input tiles.
    p.w_loads = conv ? (w_reuse ? p.J : p.T * p.J * p.K) : 0;
    T_loads_fm = p.T * (in_reuse ? 1 : p.J * p.K);
    w_slots = p.w_loads == 1 ? 1 : 2;
    if (conv && d.w_resident && p.w_loads == 1) return no("resident weights loaded once");
    p.core_w = Buffer{};
    if (conv) alloc(p.core_w, "w", p.chunk_max, w_slots);
    alloc(p.core_out, "out", out_tile, 2);
    p.core_add = Buffer{};
    if (st.add) alloc(p.core_add, "add", out_tile, 2);
    p.core_acc = Buffer{};
    if (p.K > 1) alloc(p.core_acc, "acc", d.th * d.tw * co_max * kAccBytes, 1);  // [th][tw][co_max] int32/fp32
    p.core_used = at;
    if (at > core_top) return no("core memory");
    // Row passes only for a map one core cannot hold in one pass.
    if (rows_pass > 0 && p.core_used - p.core_acc.bytes() +
                                 static_cast<int64_t>(n_in) * 2 * (align64(st.H * p.iw * cin_tile * es) -
                                                                   align64(p.ih * p.iw * cin_tile * es)) <=
                             core_top)
      return no("row passes for a map that fits a core");
    // Lock pairs: one per buffer, two for the output (one per slot when its
    // tiles alternate over two channels).
    out_pairs = hw.out_channels();
    // Whether input tiles may share the second input channel (fm_split is
    // chosen below, with the channel loads; it needs a second lock pair): a
    // pool's (the channel is free), a conv's only behind weights that arrive
    // once, as weight chunks broadcast to other cores than the input's would
    // hold each other up on that channel.
    can_split = (conv ? p.w_loads == 1 : st.kind == StageKind::Pool) && n_in == 1 && hw.core_s2mm >= 2 &&
                c.in_place[0] == Place::Memtile && cin_tile >= 2 * (conv ? kBlock : 4);
    // Weights that arrive once go straight from DDR into the cores, without
    // memtile staging (the same shim channels and bytes): when DDR time adds
    // to the stage (ddr_overlap false) they are in place before the on-chip
    // work starts; under overlap they skip the store-and-forward through the
    // memtile (timed over the experiment table: 27 of 42 default-model
    // programs faster, 3 up to 0.5% slower). Two shim streams per part write
    // halves of the core buffer (a second lock pair; without the locks for
    // it the weights are staged as before).
    int64_t part_min = std::numeric_limits<int64_t>::max();
    for (int64_t b : p.part_bytes) part_min = std::min(part_min, b);
    p.w_direct = conv && p.w_loads == 1 && !d.w_resident && !p.part_bytes.empty() && part_min >= kMinDirectBytes;
    const int64_t lock_users = static_cast<int64_t>(n_in) + (can_split ? 1 : 0) + (conv ? 1 : 0) + out_pairs +
                               (st.add ? 1 : 0);
    if (p.w_direct && hw.shim_mm2s >= 2 && 2 * (lock_users + 1) > hw.core_locks) p.w_direct = false;
    if (2 * lock_users > hw.core_locks) return no("core locks");
    return true;
  }

  // The bytes and transfers every stream carries over the stage.
  void transfer_sizes() {
    fm_mult = in_reuse ? 1.0 : static_cast<double>(p.J * p.K);
    n_fm = static_cast<double>(T_loads_fm);
    fm_bytes = in_tiles * fm_mult;  // per stream and input
    n_w = w_reuse ? static_cast<double>(p.J) : static_cast<double>(p.T * p.J * p.K);  // p.w_loads for convs
    w_mult = w_reuse ? 1.0 : static_cast<double>(p.T);
    const double part_ch = static_cast<double>(co_max * p.J);
    core_out = static_cast<double>(p.rh * p.rw) * part_ch * static_cast<double>(es);
    runs = p.out_runs;
    n_out = static_cast<double>(p.T * p.J);
    n_out_runs = n_out * static_cast<double>(runs);
    wmax = 0;
    for (int64_t b : p.part_bytes) wmax = std::max(wmax, static_cast<double>(b));
  }

  // Both input channels' busy seconds with the residual operand on channel
  // add_port and input channels from na on the second (na = 0: none).
  std::pair<double, double> ports(int add_port, int64_t na) const {
    const double share = na > 0 ? static_cast<double>(na) / static_cast<double>(cin_tile) : 1.0;
    double a = stream_s(fm_bytes * share * in_per_port, n_fm * in_per_port);
    double b = w_port + stream_s(fm_bytes * in_rest, n_fm * in_rest);
    const double b_fm = na > 0 ? stream_s(fm_bytes * (1 - share), n_fm) : 0.0;
    b += b_fm;
    if (w_first > 0 && n_fm > 2) a += std::max(0.0, w_first + (b_fm - 2 * a) / n_fm + c1_);
    // The residual operand goes to each core on its own; on a channel that
    // also takes a broadcast (every receiver must be free at once), the
    // cores' operands arriving at different times hold the broadcast up.
    const bool on_a = add_port == 0 || hw.core_s2mm < 2;
    const bool bcast = on_a ? d.pc > 1 : (na > 0 && d.pc > 1) || (d.ps > 1 && p.w_loads > 1);
    (on_a ? a : b) += t_add * (bcast ? add_mix : 1.0);
    return std::make_pair(a, b);
  }

  // A channelwise stage, or a conv split only spatially, sends every core
  // its own input streams, so its cores' streams also share their memtile's
  // channels: the busiest of them when each core's input is cut at na
  // (longest first onto the least loaded, as the channel assignment below
  // does).
  double memtile_fm(int64_t na) const {
    if (!own_streams || col_cores * (na > 0 ? 2 : 1) <= hw.memtile_mm2s) return 0.0;
    const double share = na > 0 ? static_cast<double>(na) / static_cast<double>(cin_tile) : 1.0;
    const double big = stream_s(fm_bytes * std::max(share, 1 - share), n_fm);
    const double small = na > 0 ? stream_s(fm_bytes * std::min(share, 1 - share), n_fm) : 0.0;
    thread_local std::vector<double> ch;
    ch.assign(static_cast<size_t>(hw.memtile_mm2s), 0.0);
    for (double x : {big, small})
      for (int64_t i = 0; i < col_cores && x > 0; ++i) *std::min_element(ch.begin(), ch.end()) += x;
    return *std::max_element(ch.begin(), ch.end());
  }

  // The core's two input channels: t_in the first (input tiles), t_wport
  // the second (weights; a second input). The residual operand goes on the
  // one that ends up less busy, and a conv may move input channels
  // [fm_split, ci) of every tile to the second, so that both carry about the
  // same bytes.
  void core_input_channels() {
    w_port = p.w_direct && !hw.ddr_overlap ? 0.0 : stream_s(wmax * w_mult, n_w);  // (direct: in place before)
    in_per_port = hw.core_s2mm >= 2 ? std::ceil(static_cast<double>(n_in) / 2) : static_cast<double>(n_in);
    in_rest = static_cast<double>(n_in) - in_per_port;  // inputs on the second channel
    t_add = st.add ? stream_s(core_out, n_out_runs) : 0.0;
    // Weights that arrive once come first on the second channel: the first
    // channel runs at most two tiles (its slots) ahead of the tile that waits
    // for them, and then lags by the rest.
    w_first = conv && p.w_loads == 1 ? w_port : 0.0;
    c1_ = first_comp / (ghz * 1e9);
    p.fm_split = 0;
    p.add_port = 0;
    std::tie(t_in, t_wport) = ports(0, 0);
    own_streams = st.channelwise() || d.pc == 1;
    col_cores = std::min(hw.rows, cores);
    double best_cost = std::max({t_in, t_wport, memtile_fm(0)});
    auto consider = [&](int add_port, int64_t na) {
      const auto [a, b] = ports(add_port, na);
      const double cost = std::max({a, b, memtile_fm(na)});
      if (cost < best_cost) {
        best_cost = cost;
        t_in = a, t_wport = b;
        p.add_port = add_port;
        p.fm_split = na;
      }
    };
    if (st.add && hw.core_s2mm >= 2) consider(1, 0);
    if (can_split)
      for (int add_port = 0; add_port < (st.add ? 2 : 1); ++add_port) {
        // From half the channels to the share that evens the two channels'
        // bytes, in up to 12 steps of whole units: 8 channels for a conv, 4
        // (a 32-bit DMA word of int8) for a pool's few channels.
        const double add_b = st.add ? core_out : 0.0, w_b = p.w_direct && !hw.ddr_overlap ? 0.0 : wmax * w_mult;
        const double first = std::clamp((fm_bytes + w_b + (add_port ? add_b : -add_b)) / 2, 0.0, fm_bytes);
        const int64_t unit = conv ? kBlock : 4;
        const int64_t lo = std::max<int64_t>(1, cin_tile / 2 / unit);
        const int64_t hi = std::min<int64_t>(cin_tile / unit - 1,
                                              std::llround(static_cast<double>(cin_tile) * first / fm_bytes / unit));
        const int64_t step = std::max<int64_t>(1, (hi - lo) / 12);
        for (int64_t r = lo; r <= hi; r += step) consider(add_port, r * unit);
        if (hi >= lo && (hi - lo) % step) consider(add_port, hi * unit);
        // Streams of their own per core: also the shares up to three quarters
        // that even the memtile's channels (k cores' long streams alone, their
        // short ones paired), in up to 12 steps.
        if (own_streams) {
          const int64_t top = std::max(lo + 1, cin_tile * 3 / 4 / unit), up = std::max<int64_t>(1, (top - lo) / 12);
          for (int64_t r = lo + 1; r <= top && r < cin_tile / unit; r += up) consider(add_port, r * unit);
        }
      }
    fm_share = p.fm_split > 0 ? static_cast<double>(p.fm_split) / static_cast<double>(cin_tile) : 1.0;
  }

  // Output tiles alternate over up to two core MM2S channels (one per slot).
  // Each queue's busy time plus what cannot overlap with it: the work
  // before its first transfer or COMP (the first tile's operands) and after
  // its last (the last COMP, the last output tile); the slowest sets the pace.
  bool onchip_bound() {
    const double out_ch = static_cast<double>(hw.out_channels());
    const double n_out_ch = std::ceil(n_out / out_ch);
    double t_outport = stream_s(core_out * n_out_ch / n_out, n_out_ch * static_cast<double>(runs));
    if (out_ch > 1) t_outport += (n_out_ch - 1) * t_comp / n_out;  // per slot: COMP, then its drain
    in_tile_bytes = static_cast<double>(p.ih * p.iw * cin_tile * es);
    const double out_tile_bytes = static_cast<double>(d.th * d.tw * co_max * es);
    const double in1 = stream_s(in_tile_bytes, 1),
                 w1 = conv && !(p.w_direct && !hw.ddr_overlap) ? stream_s(static_cast<double>(p.chunk_max), 1) : 0.0;
    c1 = first_comp / (ghz * 1e9), o1 = stream_s(out_tile_bytes, 1);
    pre = std::max(in1, w1);
    // The on-chip time but the memtile channels' queue (t_mt, added below)
    // bounds the estimate from below: a candidate that cannot beat must_beat
    // stops here, before the channel assignment (the planner's hot part).
    t_onchip_but_mt = std::max({t_comp + pre + o1, t_in + c1 + o1, t_wport + c1 + o1, t_outport + pre + c1});
    if (t_onchip_but_mt >= must_beat) return no("slower than a plan already found");
    return true;
  }

  // Memtile staging buffers (after the bound above: a pruned candidate
  // allocates none), per memtile, allocated downwards from the top,
  // and their locks: two per staging buffer (four for an output staging
  // buffer fed by two core channels), and two for each band of up to three
  // resident activations the stage reads or writes in this memtile.
  bool memtile_buffers() {
    const int64_t cols = hw.cols;
    p.memtile.resize(static_cast<size_t>(cols));
    for (auto& bufs : p.memtile) bufs.clear();
    thread_local std::vector<int64_t> used, locks;  // [cols]
    used.assign(static_cast<size_t>(cols), 0);
    locks.assign(static_cast<size_t>(cols), 6);
    auto stage_buf = [&](int64_t m, std::string name, int64_t slot, int64_t slots, int64_t lock_pairs = 1) {
      Buffer b;
      b.name = std::move(name);
      b.slot_bytes = align64(slot);
      b.slots = slots;
      used[static_cast<size_t>(m)] += b.bytes();
      locks[static_cast<size_t>(m)] += 2 * lock_pairs;
      b.addr = hw.memtile_memory - used[static_cast<size_t>(m)];
      p.memtile[static_cast<size_t>(m)].push_back(std::move(b));
    };
    const int64_t in_tile = p.ih * p.iw * cin_tile * es;
    for (size_t k = 0; k < n_in; ++k) {
      if (c.in_place[k] != Place::DDR) continue;
      std::string nm = n_in == 1 ? "in" : "in" + std::to_string(k);
      if (st.channelwise()) {
        for (int64_t i = 0; i < d.ps * d.pc; ++i) stage_buf(core_col(hw, i), nm + ".c" + std::to_string(i), in_tile, 2);
      } else {
        for (int64_t s = 0; s < d.ps; ++s)
          stage_buf(core_col(hw, core_index(d, s, 0)), nm + ".s" + std::to_string(s), in_tile, 2);
      }
    }
    // A part's weight loads on two shim channels when DDR time adds to the
    // stage (ddr_overlap false): its busiest channel is what counts. Under
    // overlap the loads hide behind the stage's work, and one stream per part
    // keeps its slots' prefetch (a stream per slot would refill each only
    // after its consumer) and the channels' order (timed: slower); weights
    // that go straight into the cores come in halves on two streams either way.
    p.ldw_streams = conv && hw.shim_mm2s >= 2 && (!hw.ddr_overlap || p.w_direct) ? 2 : 1;
    if (conv) {
      for (int64_t q = 0; q < d.pc; ++q) {
        int64_t m = q % cols;
        if (d.w_resident) {
          int64_t total = 0;
          for (const Chunk& ch : p.chunks[static_cast<size_t>(q)]) total += ch.bytes;
          stage_buf(m, "w.q" + std::to_string(q), std::max<int64_t>(total, 64), 1);
        } else if (p.w_direct) {
          // (no staging: DDR -> core)
        } else {
          // (two shim streams fill the two slots: a lock pair each)
          stage_buf(m, "w.q" + std::to_string(q), p.chunk_max, w_slots, p.ldw_streams == 2 && w_slots == 2 ? 2 : 1);
        }
      }
    }
    if (st.add && c.add_place == Place::DDR)
      for (int64_t i = 0; i < d.ps * d.pc; ++i) stage_buf(core_col(hw, i), "add.c" + std::to_string(i), out_tile, 2);
    if (c.out_place == Place::DDR)
      for (int64_t i = 0; i < d.ps * d.pc; ++i)
        stage_buf(core_col(hw, i), "out.c" + std::to_string(i), out_tile, 2, out_pairs);
    p.memtile_used.assign(static_cast<size_t>(cols), 0);
    for (int64_t m = 0; m < cols; ++m) {
      p.memtile_used[static_cast<size_t>(m)] = used[static_cast<size_t>(m)] + (hw.memtile_memory - c.memtile_free);
      if (used[static_cast<size_t>(m)] > c.memtile_free) return no("memtile memory");
      if (locks[static_cast<size_t>(m)] > hw.memtile_locks) return no("memtile locks");
    }
    return true;
  }

  // Channels: the streams of every memtile and shim tile, spread longest
  // first over the least loaded channel (ties: the lower channel); the
  // busiest channel of each kind, and the traffic.
  void assign_channels() {
    struct Req {
      int kind;  // 0 memtile MM2S, 1 shim MM2S, 2 shim S2MM
      int64_t col;
      double sec;
      int32_t* ch;
    };
    const int64_t cols = hw.cols;
    thread_local std::vector<Req> reqs;  // derive_plan runs for every candidate: no allocation per call
    reqs.clear();
    const int64_t n_fm_streams = st.channelwise() ? cores : d.ps;
    double ddr_in_total = 0, w_total = 0, add_total = 0, out_total = 0;
    const int64_t ns = p.fm_streams();
    p.ch_fm.resize(n_in);
    p.ch_ld.resize(n_in);
    for (size_t b = 0; b < n_in; ++b) {
      p.ch_fm[b].assign(static_cast<size_t>(n_fm_streams * ns), 0);
      p.ch_ld[b].assign(static_cast<size_t>(n_fm_streams * ns), -1);
    }
    p.ch_wm.assign(static_cast<size_t>(conv ? d.pc : 0), 0);
    p.ch_ldw.assign(static_cast<size_t>(conv ? d.pc * p.ldw_streams : 0), 0);
    p.ch_am.assign(static_cast<size_t>(st.add ? cores : 0), 0);
    p.ch_lda.assign(static_cast<size_t>(st.add ? cores : 0), -1);
    p.ch_wr.assign(static_cast<size_t>(c.out_place == Place::DDR ? cores : 0), 0);
    for (size_t b = 0; b < n_in; ++b)
      for (int64_t f = 0; f < n_fm_streams; ++f) {
        const int64_t m = core_col(hw, st.channelwise() ? f : core_index(d, f, 0));
        for (int64_t x = 0; x < ns; ++x)
          reqs.push_back(
              {0, m, stream_s(fm_bytes * (x ? 1 - fm_share : fm_share), n_fm), &p.ch_fm[b][static_cast<size_t>(f * ns + x)]});
        if (c.in_place[b] == Place::DDR) {
          reqs.push_back({1, m, ddr_s(fm_bytes, n_fm), &p.ch_ld[b][static_cast<size_t>(f * ns)]});
          ddr_in_total += fm_bytes;
        }
      }
    for (int64_t q = 0; q < d.pc && conv; ++q) {
      const int64_t m = q % cols;
      const double wb = static_cast<double>(p.part_bytes[static_cast<size_t>(q)]);
      // The part's weight loads alternate over ldw_streams shim streams
      // (chunk by chunk, or halves of a single load).
      const double ns_w = static_cast<double>(p.ldw_streams);
      for (int64_t x = 0; x < p.ldw_streams; ++x)
        reqs.push_back({1, m,
                        d.w_resident ? ddr_s(wb / ns_w, std::ceil(static_cast<double>(p.J * p.K) / ns_w))
                                     : ddr_s(wb * w_mult / ns_w, std::ceil(n_w / ns_w)),
                        &p.ch_ldw[static_cast<size_t>(q * p.ldw_streams + x)]});
      if (!p.w_direct) reqs.push_back({0, m, stream_s(wb * w_mult, n_w), &p.ch_wm[static_cast<size_t>(q)]});
      w_total += d.w_resident ? wb : wb * w_mult;
    }
    if (st.add)
      for (int64_t i = 0; i < cores; ++i) {
        const int64_t m = core_col(hw, i);
        reqs.push_back({0, m, stream_s(core_out, n_out_runs), &p.ch_am[static_cast<size_t>(i)]});
        if (c.add_place == Place::DDR) {
          reqs.push_back({1, m, ddr_s(core_out, n_out_runs), &p.ch_lda[static_cast<size_t>(i)]});
          add_total += core_out;
        }
      }
    if (c.out_place == Place::DDR)
      for (int64_t i = 0; i < cores; ++i) {
        reqs.push_back({2, core_col(hw, i), ddr_s(core_out, n_out_runs), &p.ch_wr[static_cast<size_t>(i)]});
        out_total += core_out;
      }
    // Busy seconds per [kind][col][channel], flat.
    const int64_t nch[3] = {hw.memtile_mm2s, hw.shim_mm2s, hw.shim_s2mm};
    const int64_t chmax = std::max({nch[0], nch[1], nch[2]});
    thread_local std::vector<double> load;
    load.assign(static_cast<size_t>(3 * cols * chmax), 0.0);
    auto load_at = [&](int k, int64_t col) { return load.data() + (k * cols + col) * chmax; };
    thread_local std::vector<size_t> order;
    order.resize(reqs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return reqs[a].sec > reqs[b].sec || (reqs[a].sec == reqs[b].sec && a < b); });
    for (size_t i : order) {
      double* ch = load_at(reqs[i].kind, reqs[i].col);
      int64_t best = 0;
      for (int64_t x = 1; x < nch[reqs[i].kind]; ++x)
        if (ch[x] < ch[best]) best = x;
      ch[best] += reqs[i].sec;
      *reqs[i].ch = static_cast<int32_t>(best);
    }
    for (int64_t m = 0; m < cols; ++m) {
      for (int64_t x = 0; x < nch[0]; ++x) t_mt = std::max(t_mt, load_at(0, m)[x]);
      for (int64_t x = 0; x < nch[1]; ++x) t_ddr_in = std::max(t_ddr_in, load_at(1, m)[x]);
      for (int64_t x = 0; x < nch[2]; ++x) t_ddr_out = std::max(t_ddr_out, load_at(2, m)[x]);
    }
    p.ddr_read = static_cast<int64_t>(ddr_in_total * static_cast<double>(n_in) + add_total);
    p.ddr_weights = static_cast<int64_t>(w_total);
    p.ddr_write = static_cast<int64_t>(out_total);
    p.stream_bytes = static_cast<int64_t>(fm_bytes * static_cast<double>(n_fm_streams * static_cast<int64_t>(n_in)) +
                                          wmax * w_mult * static_cast<double>(d.pc) + core_out * static_cast<double>(cores));
  }

  // The stage's time: the on-chip queues and the DDR ones, overlapped or not.
  void estimate() {
    const double t_onchip = std::max(t_onchip_but_mt, t_mt + c1 + o1);
    if (hw.ddr_overlap) {
      // The DDR queues in the same pipeline: the first tile's operands come
      // from DDR before anything else can start.
      const double d_in1 = c.in_place[0] == Place::DDR ? ddr_s(in_tile_bytes, 1) : 0.0;
      const double d_w1 = conv ? (d.w_resident ? ddr_s(wmax, 1) : ddr_s(static_cast<double>(p.chunk_max), 1)) : 0.0;
      const double dpre = std::max(d_in1, d_w1);
      p.est_seconds = std::max({t_onchip + dpre, t_ddr_in + pre + c1 + o1,
                                t_ddr_out + dpre + pre + c1 + (c.out_place == Place::DDR ? o1 : 0.0)});
    } else {
      // DDR transfers are not overlapped: their busiest queues add.
      p.est_seconds = t_onchip + t_ddr_in + t_ddr_out;
    }
  }

  // How much a residual operand costs on a channel shared with a broadcast:
  // its transfer, and about as long again holding the broadcast up (fitted
  // to the timed programs).
  static constexpr double add_mix = 2.0;

  const PlanContext& c;
  StagePlan& p;
  const Hardware& hw;
  const Stage& st;
  const Decision& d;
  const int64_t es;  // bytes per element
  const bool conv;
  std::string* why;
  const double must_beat;
  const double ghz, ovh;  // clock; seconds of a DMA transfer's overhead
  const size_t n_in;      // stage inputs
  const int64_t cores;
  // tiles()
  int64_t co_max = 0, cin_tile = 0;
  int64_t rows_pass = 0;  // input rows per pass of a whole-map pool in row passes (pass_rows), else 0
  // compute_time()
  double in_tiles = 0, first_comp = 0, t_comp = 0;
  // core_memory()
  int64_t out_tile = 0, T_loads_fm = 0, w_slots = 0, out_pairs = 0;
  bool in_reuse = false, w_reuse = false, can_split = false;
  // transfer_sizes()
  double fm_mult = 0, n_fm = 0, fm_bytes = 0, n_w = 0, w_mult = 0, core_out = 0, n_out = 0, n_out_runs = 0, wmax = 0;
  int64_t runs = 1;
  // core_input_channels()
  double w_port = 0, in_per_port = 0, in_rest = 0, t_add = 0, w_first = 0, c1_ = 0, t_in = 0, t_wport = 0, fm_share = 1;
  bool own_streams = false;
  int64_t col_cores = 0;
  // onchip_bound()
  double in_tile_bytes = 0, c1 = 0, o1 = 0, pre = 0, t_onchip_but_mt = 0;
  // assign_channels()
  double t_mt = 0, t_ddr_in = 0, t_ddr_out = 0;
};

}  // namespace

bool derive_plan(const PlanContext& c, StagePlan& p, std::string* why, double must_beat, const StagePlan* same_split) {
  return Derivation(c, p, why, must_beat).run(same_split);
}

}  // namespace bsp::aie2
