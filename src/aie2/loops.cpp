#include "aie2/loops.hpp"

#include "core/error.hpp"

namespace bsp::aie2 {

namespace {

// Whether units [a, a + P) and [b, b + P) have the same shape; fills the
// per-instruction operand deltas (b - a).
bool deltas(const std::vector<Instr>& f, size_t a0, size_t a1, size_t b0, size_t b1, std::vector<Instr>& d) {
  if (a1 - a0 != b1 - b0) return false;
  d.resize(a1 - a0);
  for (size_t i = 0; i < a1 - a0; ++i) {
    const Instr& x = f[a0 + i];
    const Instr& y = f[b0 + i];
    if (x.op != y.op) return false;
    d[i].op = Opc::Stride;
    for (int k = 0; k < kOperands; ++k) {
      int64_t diff = static_cast<int64_t>(y.a[static_cast<size_t>(k)]) - x.a[static_cast<size_t>(k)];
      if (diff < INT32_MIN || diff > INT32_MAX) return false;
      d[i].a[static_cast<size_t>(k)] = static_cast<int32_t>(diff);
    }
  }
  return true;
}

// Whether unit [b0, b1) continues the progression of d from the unit
// [a0, a0 + (b1 - b0)) before it: same opcodes, operands a + d (what deltas()
// would give for the pair and d compare equal to, without building it).
bool continues(const std::vector<Instr>& f, size_t a0, size_t b0, size_t b1, const std::vector<Instr>& d) {
  if (b1 - b0 != d.size()) return false;
  for (size_t i = 0; i < d.size(); ++i) {
    const Instr& x = f[a0 + i];
    const Instr& y = f[b0 + i];
    if (x.op != y.op) return false;
    for (int k = 0; k < kOperands; ++k) {
      const auto kk = static_cast<size_t>(k);
      if (static_cast<int64_t>(y.a[kk]) - x.a[kk] != d[i].a[kk]) return false;
    }
  }
  return true;
}

}  // namespace

std::vector<Instr> compress_loops(const std::vector<Instr>& flat, const std::vector<size_t>& units_in,
                                  const std::vector<size_t>& periods) {
  std::vector<size_t> units = units_in;
  units.push_back(flat.size());
  const size_t nu = units.size() - 1;
  auto ubeg = [&](size_t u) { return units[u]; };
  std::vector<Instr> out;
  out.reserve(flat.size() / 4 + 16);
  std::vector<Instr> d;
  size_t u = 0;
  while (u < nu) {
    size_t best_p = 0, best_r = 0;
    int64_t best_gain = 0;
    for (size_t P : periods) {
      if (P == 0 || u + 2 * P > nu) continue;
      const size_t len = ubeg(u + P) - ubeg(u);
      if (len == 0) continue;
      if (!deltas(flat, ubeg(u), ubeg(u + P), ubeg(u + P), ubeg(u + 2 * P), d)) continue;
      size_t r = 2;
      while (u + (r + 1) * P <= nu && continues(flat, ubeg(u + (r - 1) * P), ubeg(u + r * P), ubeg(u + (r + 1) * P), d))
        ++r;
      int64_t strides = 0;
      for (const Instr& s : d) {
        bool nz = false;
        for (int32_t v : s.a) nz |= v != 0;
        strides += nz;
      }
      int64_t gain = static_cast<int64_t>((r - 1) * len) - 1 - strides;
      if (gain > best_gain) {
        best_gain = gain;
        best_p = P;
        best_r = r;
      }
    }
    if (best_r == 0) {
      for (size_t i = ubeg(u); i < ubeg(u + 1); ++i) out.push_back(flat[i]);
      ++u;
      continue;
    }
    const size_t b0 = ubeg(u), b1 = ubeg(u + best_p);
    deltas(flat, b0, b1, b1, ubeg(u + 2 * best_p), d);
    out.push_back(make(Opc::Loop, {static_cast<int32_t>(best_r), static_cast<int32_t>(b1 - b0)}));
    for (size_t i = b0; i < b1; ++i) {
      out.push_back(flat[i]);
      bool nz = false;
      for (int32_t v : d[i - b0].a) nz |= v != 0;
      if (nz) out.push_back(d[i - b0]);
    }
    u += best_r * best_p;
  }
  return out;
}

bool LoopCursor::next(Instr& out, size_t& record) {
  const auto& c = *code_;
  for (;;) {
    if (in_loop_ && pc_ >= loop_end_) {
      if (++iter_ < count_) {
        pc_ = loop_start_;
      } else {
        in_loop_ = false;
        pc_ = loop_end_;
      }
      continue;
    }
    if (pc_ >= c.size()) return false;
    const Instr& r = c[pc_];
    if (r.op == Opc::Loop) {
      if (in_loop_) fail("nested loop at record {}", pc_);
      const int64_t count = r.a[0], body = r.a[1];
      if (count < 0 || body < 0) fail("bad loop at record {}", pc_);
      size_t j = pc_ + 1;
      for (int64_t b = 0; b < body; ++j) {
        if (j >= c.size()) fail("loop body at record {} runs past the end", pc_);
        if (c[j].op == Opc::Loop) fail("nested loop at record {}", j);
        if (c[j].op != Opc::Stride) ++b;
      }
      while (j < c.size() && c[j].op == Opc::Stride) ++j;
      loop_start_ = pc_ + 1;
      loop_end_ = j;
      count_ = count;
      iter_ = 0;
      in_loop_ = count > 0 && body > 0;
      pc_ = in_loop_ ? loop_start_ : loop_end_;
      continue;
    }
    if (r.op == Opc::Stride) {  // a stride outside a loop has no effect
      ++pc_;
      continue;
    }
    out = r;
    record = pc_;
    ++pc_;
    if (pc_ < c.size() && c[pc_].op == Opc::Stride) {
      if (in_loop_)
        for (int k = 0; k < kOperands; ++k) {
          // Operands are int32 at every iteration (bsp-isa(7)): a stride that
          // takes one past 32 bits is a broken program, not a wrap-around.
          const int64_t v = out.a[static_cast<size_t>(k)] + iter_ * c[pc_].a[static_cast<size_t>(k)];
          if (v < INT32_MIN || v > INT32_MAX)
            fail("record {}: operand {} is {} at iteration {} of its loop, past 32 bits", record, k, v, iter_);
          out.a[static_cast<size_t>(k)] = static_cast<int32_t>(v);
        }
      ++pc_;
    }
    return true;
  }
}

}  // namespace bsp::aie2
