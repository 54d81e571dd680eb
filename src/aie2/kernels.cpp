#include "aie2/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "aie2/schedule.hpp"
#include "aie2/sparse24.hpp"
#include "compact/int8.hpp"
#include "core/reference_ops.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

namespace {

int64_t in_rows(const KernelDecl& k, int64_t oh) { return (oh - 1) * k.sh + (k.kh - 1) * k.dh + 1; }
int64_t in_cols(const KernelDecl& k, int64_t ow) { return (ow - 1) * k.sw + (k.kw - 1) * k.dw + 1; }

void check_fits(const char* what, const Layout& l, int64_t rows, int64_t cols, int64_t ch) {
  if (rows > l.rows || cols > l.cols || ch > l.pitch)
    fail("{} of {}x{}x{} does not fit its buffer [{}][{}][{}]", what, rows, cols, ch, l.rows, l.cols, l.pitch);
}

// The accumulation the fp32 and int8 convolutions share, over one chunk of
// output channels and one pass of input channels: parses the weight chunk
// (parameters, then for sparse kernels per-block-row counts and block-column
// indices, then the blocks of T, [block][o 8][ky][kx][i 8]) and adds
// acc[y][x][o] += sum over kept blocks, window, channels. The accumulator is
// the call's buffer across passes, else a local array (single pass).
template <typename T, typename Acc>
struct Accumulated {
  const uint8_t* params = nullptr;  // the chunk's per-channel parameters
  Acc* acc = nullptr;               // [oh][acc_w][acc_c]
  int64_t acc_w = 0, acc_c = 0;
  bool last = false;                // the last pass: the caller writes the output
  std::vector<Acc> local;
};

// A sparse24 chunk's pairs (man/bsp-isa.7, SPARSE OPERAND, from byte `off`)
// into the dense blocks' layout [block][o 8][ky][kx][i 8]: per block row its
// units (block e, tap t) in the order e * taps + t, two to a pair. Checks the
// pair count against the instruction's (operand pt), every mask, and that an
// odd row's last pair holds zeros in its unused half, before it allocates
// the blocks (bounded by the slot: at most 2 units of 64 bytes per 80).
std::vector<int8_t> decompress_pairs(const KernelCall& c, const uint16_t* cnt, int64_t nbr, int64_t off) {
  const KernelDecl& k = *c.k;
  const int64_t KHW = k.kh * k.kw, blk_elems = kBlock * KHW * kBlock;
  int64_t pairs = 0;
  for (int64_t b = 0; b < nbr; ++b) pairs += (cnt[b] * KHW + 1) / 2;
  if (pairs != c.pt) fail("weight chunk holds {} sparse pairs, the instruction says {}", pairs, c.pt);
  if (off + pairs * kPairBytes > c.w_bytes) fail("weight chunk of {} sparse pairs runs past its buffer", pairs);
  std::vector<int8_t> out(static_cast<size_t>(c.nnz * blk_elems), 0);
  int8_t* blocks = out.data();
  const uint8_t* src = c.w + off;
  int8_t dec[kPairElems];
  std::string why;
  int64_t e0 = 0;  // the row's first block
  for (int64_t b = 0; b < nbr; ++b) {
    const int64_t units = cnt[b] * KHW;
    for (int64_t u = 0; u < units; u += 2, src += kPairBytes) {
      if (!unpack_pair(src, dec, why)) fail("block row {}, pair {}: {}", b, u / 2, why);
      for (int64_t h = 0; h < 2; ++h) {
        const bool real = u + h < units;
        const int64_t e = e0 + (u + h) / KHW, t = (u + h) % KHW;
        for (int64_t o = 0; o < kBlock; ++o)
          for (int64_t i = 0; i < kBlock; ++i) {
            const int8_t v = dec[16 * o + 8 * h + i];
            if (real)
              blocks[e * blk_elems + (o * KHW + t) * kBlock + i] = v;
            else if (v != 0)
              fail("block row {}, pair {}: the padding half of an odd row holds a nonzero", b, u / 2);
          }
      }
    }
    e0 += cnt[b];
  }
  return out;
}

template <typename T, typename Acc>
Accumulated<T, Acc> accumulate_blocks(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  const int64_t oh = c.oh, ow = c.ow, co = c.co, ci = c.ci;
  const int64_t KHW = k.kh * k.kw;
  const bool s24 = (k.flags & kKSparse24) != 0;
  const bool sparse = (k.flags & kKSparse) != 0 || s24;  // sparse24 chunks always carry counts and indices
  const int64_t nbr = (co + kBlock - 1) / kBlock, nbc = (ci + kBlock - 1) / kBlock;
  check_fits("input tile", c.in_l, in_rows(k, oh), in_cols(k, ow), ci);
  check_fits("output tile", c.out_l, oh, ow, co);
  const int64_t pbytes = (co * param_bytes_per_channel(c.dtype) + 3) / 4 * 4;
  const uint16_t* cnt = nullptr;
  const uint16_t* idx = nullptr;
  int64_t off = pbytes;
  if (sparse) {
    if (off + 2 * nbr > c.w_bytes) fail("weight chunk header runs past its buffer");
    cnt = reinterpret_cast<const uint16_t*>(c.w + off);
    int64_t total = 0;
    for (int64_t r = 0; r < nbr; ++r) total += cnt[r];
    if (total != c.nnz) fail("weight chunk holds {} blocks, the instruction says {}", total, c.nnz);
    idx = cnt + nbr;
    for (int64_t e = 0; e < total; ++e)
      if (idx[e] >= nbc) fail("weight chunk block index {} is past the {} input blocks", idx[e], nbc);
    off += (2 * nbr + 2 * total + 3) / 4 * 4;
  } else if (c.nnz != nbr * nbc) {
    fail("dense weight chunk of {}x{} blocks, the instruction says {}", nbr, nbc, c.nnz);
  }
  const int64_t blk_elems = kBlock * KHW * kBlock;
  if (!s24 && off + c.nnz * blk_elems * static_cast<int64_t>(sizeof(T)) > c.w_bytes)
    fail("weight chunk of {} blocks runs past its buffer", c.nnz);
  Accumulated<T, Acc> r;
  r.params = c.w;
  const T* blocks = reinterpret_cast<const T*>(c.w + off);
  std::vector<T> expanded;  // sparse24: the pairs decompressed into the blocks' layout
  if (s24) {
    if constexpr (!std::is_same_v<T, int8_t>) {
      fail("the sparse operand is int8 only");
    } else {
      expanded = decompress_pairs(c, cnt, nbr, off);
      blocks = expanded.data();
    }
  }
  const T* in = reinterpret_cast<const T*>(c.in[0]);
  const int64_t IW = c.in_l.cols, CI = c.in_l.pitch;
  const bool first = (c.flags & kCFirst) != 0;
  r.last = (c.flags & kCLast) != 0;
  if (c.acc) {
    r.acc = reinterpret_cast<Acc*>(c.acc);
    r.acc_w = c.out_l.cols;
    r.acc_c = c.out_l.pitch;
  } else {
    if (!first || !r.last) fail("a multi-pass convolution needs an accumulator buffer");
    r.local.assign(static_cast<size_t>(oh * ow * co), Acc{0});
    r.acc = r.local.data();
    r.acc_w = ow;
    r.acc_c = co;
  }
  Acc* const acc = r.acc;
  const int64_t acc_w = r.acc_w, acc_c = r.acc_c;
  if (first && c.acc)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) std::fill_n(acc + (y * acc_w + x) * acc_c, co, Acc{0});
  // Block row start offsets (for the parallel loop).
  std::vector<int64_t> row_start(static_cast<size_t>(nbr) + 1, 0);
  for (int64_t b = 0; b < nbr; ++b)
    row_start[static_cast<size_t>(b) + 1] = row_start[static_cast<size_t>(b)] + (sparse ? cnt[b] : nbc);
  const int64_t work = oh * ow * c.nnz * KHW * 64;
#pragma omp parallel for collapse(2) schedule(static) if (work > (1 << 21))
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      Acc* a = acc + (y * acc_w + x) * acc_c;
      for (int64_t b = 0; b < nbr; ++b) {
        Acc s[kBlock] = {};
        for (int64_t e = row_start[static_cast<size_t>(b)]; e < row_start[static_cast<size_t>(b) + 1]; ++e) {
          const int64_t bc = sparse ? idx[e] : e - row_start[static_cast<size_t>(b)];
          const int64_t valid = std::min<int64_t>(kBlock, ci - bc * kBlock);
          const T* W = blocks + e * blk_elems;
          for (int64_t ky = 0; ky < k.kh; ++ky)
            for (int64_t kx = 0; kx < k.kw; ++kx) {
              const T* ip = in + ((y * k.sh + ky * k.dh) * IW + (x * k.sw + kx * k.dw)) * CI + bc * kBlock;
              const T* wp = W + (ky * k.kw + kx) * kBlock;
              for (int64_t o = 0; o < kBlock; ++o) {
                const T* wo = wp + o * KHW * kBlock;
                Acc t = 0;
                for (int64_t i = 0; i < valid; ++i) t += Acc{ip[i]} * Acc{wo[i]};
                s[o] += t;
              }
            }
        }
        const int64_t n = std::min<int64_t>(kBlock, co - b * kBlock);
        for (int64_t o = 0; o < n; ++o) a[b * kBlock + o] += s[o];
      }
    }
  return r;
}

// An fp32 kernel's clip bounds: float32 bits in its constants.
std::pair<float, float> clip_bounds(const KernelDecl& k) {
  float lo = 0, hi = 0;
  if (k.flags & kKClip) {
    if (k.consts.size() != 2) fail("a clip kernel needs its two bounds");
    std::memcpy(&lo, &k.consts[0], 4);
    std::memcpy(&hi, &k.consts[1], 4);
  }
  return {lo, hi};
}

// fp32 convolution over one chunk of output channels and one pass of input
// channels: acc[y][x][o] += sum over blocks, window, channels.
void conv_fp32(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  const int64_t oh = c.oh, ow = c.ow, co = c.co;
  const Accumulated<float, float> am = accumulate_blocks<float, float>(c);
  const float* params = reinterpret_cast<const float*>(am.params);
  const float* acc = am.acc;
  const int64_t acc_w = am.acc_w, acc_c = am.acc_c;
  const bool last = am.last;
  if (!last) return;
  float* out = reinterpret_cast<float*>(c.out);
  const float* add = reinterpret_cast<const float*>(c.add);
  const bool relu = (k.flags & kKRelu) != 0, has_add = (k.flags & kKAdd) != 0;
  if (has_add && !add) fail("the kernel adds a residual operand but none is given");
  const auto [lo, hi] = clip_bounds(k);
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const float* a = acc + (y * acc_w + x) * acc_c;
      float* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      const float* r = has_add ? add + (y * c.out_l.cols + x) * c.out_l.pitch : nullptr;
      for (int64_t ch = 0; ch < co; ++ch) {
        const float* p = params + 3 * ch;
        float v = (a[ch] + p[0]) * p[1] + p[2];
        if (r) v += r[ch];
        if (relu) v = std::max(v, 0.0f);
        if (k.flags & kKClip) v = std::min(std::max(v, lo), hi);
        o[ch] = v;
      }
    }
}

// kKRows: a whole-map average summed in row passes. The input tile holds
// window rows [pt, kh - pb) of the one output pixel, [rows][kw][pitch]; they
// add to the accumulator [co] (int32 for int8, fp32 for fp32; kCFirst starts
// it from zero) in the window's row-major order. Returns the accumulator on
// the last pass (kCLast: the caller divides and writes the output), else null.
template <typename T, typename Acc>
const Acc* pool_rows_pass(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  if (k.kind != KKind::AvgPool || c.oh != 1 || c.ow != 1 || k.dh != 1 || k.dw != 1 || c.pl != 0 || c.pr != 0)
    fail("row passes are for an average over one whole-map window");
  if (!c.acc) fail("an average in row passes needs an accumulator");
  const int64_t rows = k.kh - c.pt - c.pb;
  if (c.pt < 0 || c.pb < 0 || rows < 1) fail("a row pass of {} rows of a window of {}", rows, k.kh);
  check_fits("input tile", c.in_l, rows, k.kw, c.co);
  check_fits("output tile", c.out_l, 1, 1, c.co);
  const T* in = reinterpret_cast<const T*>(c.in[0]);
  Acc* acc = reinterpret_cast<Acc*>(c.acc);
  if (c.flags & kCFirst) std::fill(acc, acc + c.co, Acc{0});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t q = 0; q < k.kw; ++q) {
      const T* ip = in + (r * c.in_l.cols + q) * c.in_l.pitch;
      for (int64_t ch = 0; ch < c.co; ++ch) acc[ch] += ip[ch];
    }
  return (c.flags & kCLast) ? acc : nullptr;
}

void pool_fp32(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  if (k.flags & kKRows) {
    const float* acc = pool_rows_pass<float, float>(c);
    if (!acc) return;
    float* o = reinterpret_cast<float*>(c.out);
    const float inv = 1.0f / static_cast<float>(k.kh * k.kw);
    for (int64_t ch = 0; ch < c.co; ++ch) o[ch] = (k.flags & kKRelu) ? std::max(acc[ch] * inv, 0.0f) : acc[ch] * inv;
    return;
  }
  const int64_t ih = in_rows(k, c.oh), iw = in_cols(k, c.ow);
  check_fits("input tile", c.in_l, ih, iw, c.co);
  check_fits("output tile", c.out_l, c.oh, c.ow, c.co);
  const float* in = reinterpret_cast<const float*>(c.in[0]);
  float* out = reinterpret_cast<float*>(c.out);
  const bool maxp = k.kind == KKind::MaxPool;
  const bool include_pad = (k.flags & kKIncludePad) != 0;
  for (int64_t y = 0; y < c.oh; ++y)
    for (int64_t x = 0; x < c.ow; ++x) {
      float* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      for (int64_t ch = 0; ch < c.co; ++ch) o[ch] = maxp ? -std::numeric_limits<float>::infinity() : 0.0f;
      int64_t count = 0;
      for (int64_t ky = 0; ky < k.kh; ++ky) {
        const int64_t r = y * k.sh + ky * k.dh;
        for (int64_t kx = 0; kx < k.kw; ++kx) {
          const int64_t q = x * k.sw + kx * k.dw;
          const bool real = r >= c.pt && r < ih - c.pb && q >= c.pl && q < iw - c.pr;
          if (include_pad || real) ++count;
          if (!real) continue;
          const float* ip = in + (r * c.in_l.cols + q) * c.in_l.pitch;
          if (maxp)
            for (int64_t ch = 0; ch < c.co; ++ch) o[ch] = std::max(o[ch], ip[ch]);
          else
            for (int64_t ch = 0; ch < c.co; ++ch) o[ch] += ip[ch];
        }
      }
      if (!maxp) {
        const float inv = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
        for (int64_t ch = 0; ch < c.co; ++ch) o[ch] *= inv;
      }
      if (k.flags & kKRelu)
        for (int64_t ch = 0; ch < c.co; ++ch) o[ch] = std::max(o[ch], 0.0f);
    }
}

// The function flag of an eltwise kernel (at most one).
int32_t eltwise_fn(const KernelDecl& k) {
  const int32_t fn = k.flags & (kKSigmoid | kKHardSigmoid | kKHardSwish | kKMul);
  if (fn & (fn - 1)) fail("an elementwise kernel applies one function, not several");
  if ((fn == kKMul) != (k.n_in == 2 && (k.flags & kKMul))) fail("a mul kernel takes two inputs");
  if ((k.flags & kKBcast) && fn != kKMul) fail("only a mul kernel broadcasts an input");
  return fn;
}

// Element `at` of input 1 of a mul, or with kKBcast its channel ch: the
// scale tile holds one pixel (the core's channels of a [1, 1, C] value).
inline int64_t second_at(const KernelDecl& k, int64_t at, int64_t ch) { return (k.flags & kKBcast) ? ch : at; }

void eltwise_fp32(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  const int32_t fn = eltwise_fn(k);
  const auto [lo, hi] = clip_bounds(k);
  float alpha = 0, beta = 0;  // hardsigmoid (float32 bits in the constants)
  if (fn == kKHardSigmoid) {
    if (k.consts.size() != 2) fail("a hardsigmoid kernel needs its alpha and beta");
    std::memcpy(&alpha, &k.consts[0], 4);
    std::memcpy(&beta, &k.consts[1], 4);
  }
  check_fits("input tile", c.in_l, c.oh, c.ow, c.co);
  check_fits("output tile", c.out_l, c.oh, c.ow, c.co);
  float* out = reinterpret_cast<float*>(c.out);
  for (int64_t y = 0; y < c.oh; ++y)
    for (int64_t x = 0; x < c.ow; ++x) {
      float* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      for (int64_t ch = 0; ch < c.co; ++ch) {
        const int64_t at = (y * c.in_l.cols + x) * c.in_l.pitch + ch;
        float v = 0;
        if (fn == kKMul) {
          v = reinterpret_cast<const float*>(c.in[0])[at] * reinterpret_cast<const float*>(c.in[1])[second_at(k, at, ch)];
        } else {
          for (int32_t b = 0; b < k.n_in; ++b) v += reinterpret_cast<const float*>(c.in[b])[at];
        }
        // The reference op's own float32 functions (core/reference_ops.hpp).
        if (fn == kKSigmoid) v = ref::sigmoid(v);
        if (fn == kKHardSigmoid) v = ref::hardsigmoid(v, alpha, beta);
        if (fn == kKHardSwish) v = ref::hardswish(v);
        if (k.flags & kKRelu) v = std::max(v, 0.0f);
        if (k.flags & kKClip) v = std::min(std::max(v, lo), hi);
        o[ch] = v;
      }
    }
}

void softmax_fp32(const KernelCall& c) {
  check_fits("input tile", c.in_l, c.oh, c.ow, c.co);
  check_fits("output tile", c.out_l, c.oh, c.ow, c.co);
  const float* in = reinterpret_cast<const float*>(c.in[0]);
  float* out = reinterpret_cast<float*>(c.out);
  for (int64_t y = 0; y < c.oh; ++y)
    for (int64_t x = 0; x < c.ow; ++x) {
      const float* ip = in + (y * c.in_l.cols + x) * c.in_l.pitch;
      float* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t ch = 0; ch < c.co; ++ch) m = std::max(m, ip[ch]);
      double sum = 0;
      for (int64_t ch = 0; ch < c.co; ++ch) {
        o[ch] = std::exp(ip[ch] - m);
        sum += o[ch];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t ch = 0; ch < c.co; ++ch) o[ch] *= inv;
    }
}

// ---- int8 (the semantics of compact/int8.hpp, through its primitives) ----

// Reads the kernel's int8 constants in order.
class Consts {
 public:
  explicit Consts(const KernelDecl& k) : v_(k.consts) {}
  int32_t next() {
    if (i_ >= v_.size()) fail("the kernel's int8 constants are missing or short");
    return v_[i_++];
  }
  q8::Requant requant() {
    q8::Requant r;
    r.mult = next();
    r.shift = next();
    if (r.mult < 0 || r.shift < 0 || r.shift > 62) fail("bad int8 rescale constants");
    return r;
  }
  std::vector<q8::Requant> posts() {
    const int32_t n = next();
    if (n < 0 || n > 8) fail("bad int8 constants");
    std::vector<q8::Requant> p;
    for (int32_t i = 0; i < n; ++i) p.push_back(requant());
    return p;
  }

 private:
  const std::vector<int32_t>& v_;
  size_t i_ = 0;
};

// The rescaling of a value written into a concat slice (one per concat).
int8_t post(int32_t y, const std::vector<q8::Requant>& p) {
  for (const q8::Requant& r : p) y = q8::requantize(y, r, -128, 127);
  return static_cast<int8_t>(y);
}

void conv_int8(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  Consts kc(k);
  const int32_t lo = kc.next(), hi = kc.next(), has_add = kc.next();
  const int32_t m_self = kc.next(), m_other = kc.next(), a_shift = kc.next(), a_lo = kc.next(), a_hi = kc.next();
  const q8::FusedAdd fused = q8::FusedAdd::make(m_self, m_other, a_shift, a_lo, a_hi);
  const std::vector<q8::Requant> posts = kc.posts();
  const int64_t oh = c.oh, ow = c.ow, co = c.co;
  const Accumulated<int8_t, int32_t> am = accumulate_blocks<int8_t, int32_t>(c);
  const int32_t* params = reinterpret_cast<const int32_t*>(am.params);
  const int32_t* acc = am.acc;
  const int64_t acc_w = am.acc_w, acc_c = am.acc_c;
  const bool last = am.last;
  if (!last) return;
  int8_t* out = reinterpret_cast<int8_t*>(c.out);
  const int8_t* add = reinterpret_cast<const int8_t*>(c.add);
  if (has_add && !add) fail("the kernel adds a residual operand but none is given");
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const int32_t* a = acc + (y * acc_w + x) * acc_c;
      int8_t* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      const int8_t* rr = has_add ? add + (y * c.out_l.cols + x) * c.out_l.pitch : nullptr;
      for (int64_t ch = 0; ch < co; ++ch) {
        const int32_t* p = params + 3 * ch;
        const q8::Requant rq{p[1], p[2]};
        int32_t v = q8::requantize(int64_t{a[ch]} + p[0], rq, lo, hi);
        if (rr) v = fused.apply(v, rr[ch]);
        o[ch] = post(v, posts);
      }
    }
}

void pool_int8(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  Consts kc(k);
  const bool maxp = k.kind == KKind::MaxPool;
  int32_t first_div = 1;
  std::vector<q8::Requant> table;
  if (!maxp) {
    first_div = kc.next();
    const int32_t n = kc.next();
    if (first_div < 1 || n < 1 || n > 4096) fail("bad average-pool constants");
    for (int32_t i = 0; i < n; ++i) table.push_back(kc.requant());
  }
  const std::vector<q8::Requant> posts = kc.posts();
  if (k.flags & kKRows) {
    // The whole window's int32 sum, rescaled once by its divisor's rescale.
    const int32_t* acc = pool_rows_pass<int8_t, int32_t>(c);
    if (!acc) return;
    const int64_t t = k.kh * k.kw - first_div;
    if (t < 0 || t >= static_cast<int64_t>(table.size())) fail("no rescale constant for a window of {}", k.kh * k.kw);
    int8_t* o = reinterpret_cast<int8_t*>(c.out);
    for (int64_t ch = 0; ch < c.co; ++ch)
      o[ch] = post(q8::requantize(acc[ch], table[static_cast<size_t>(t)], -128, 127), posts);
    return;
  }
  const int64_t ih = in_rows(k, c.oh), iw = in_cols(k, c.ow);
  check_fits("input tile", c.in_l, ih, iw, c.co);
  check_fits("output tile", c.out_l, c.oh, c.ow, c.co);
  const int8_t* in = reinterpret_cast<const int8_t*>(c.in[0]);
  int8_t* out = reinterpret_cast<int8_t*>(c.out);
  const bool include_pad = (k.flags & kKIncludePad) != 0;
  std::vector<int32_t> acc(static_cast<size_t>(c.co));
  for (int64_t y = 0; y < c.oh; ++y)
    for (int64_t x = 0; x < c.ow; ++x) {
      int8_t* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      std::fill(acc.begin(), acc.end(), maxp ? -128 : 0);
      int64_t real = 0;
      for (int64_t ky = 0; ky < k.kh; ++ky) {
        const int64_t r = y * k.sh + ky * k.dh;
        for (int64_t kx = 0; kx < k.kw; ++kx) {
          const int64_t q = x * k.sw + kx * k.dw;
          if (!(r >= c.pt && r < ih - c.pb && q >= c.pl && q < iw - c.pr)) continue;
          ++real;
          const int8_t* ip = in + (r * c.in_l.cols + q) * c.in_l.pitch;
          for (int64_t ch = 0; ch < c.co; ++ch)
            acc[static_cast<size_t>(ch)] = maxp ? std::max<int32_t>(acc[static_cast<size_t>(ch)], ip[ch])
                                                : acc[static_cast<size_t>(ch)] + ip[ch];
        }
      }
      if (maxp) {
        for (int64_t ch = 0; ch < c.co; ++ch) o[ch] = post(acc[static_cast<size_t>(ch)], posts);
        continue;
      }
      const int64_t div = include_pad ? k.kh * k.kw : std::max<int64_t>(real, 1);
      const int64_t t = div - first_div;
      if (t < 0 || t >= static_cast<int64_t>(table.size())) fail("no rescale constant for a window of {}", div);
      for (int64_t ch = 0; ch < c.co; ++ch)
        o[ch] = post(q8::requantize(acc[static_cast<size_t>(ch)], table[static_cast<size_t>(t)], -128, 127), posts);
    }
}

// op 0 add, 1 relu, 2 copy, 3 clip, 4 lookup table, 5 mul (man/bsp-isa.7).
void eltwise_int8(const KernelCall& c) {
  const KernelDecl& k = *c.k;
  const int32_t fn = eltwise_fn(k);
  Consts kc(k);
  const int32_t op = kc.next(), n_in = kc.next();
  if (n_in != k.n_in || op < 0 || op > 5) fail("bad elementwise constants");
  if ((op == 5) != (fn == kKMul) || (op == 4) != (fn == kKSigmoid || fn == kKHardSigmoid || fn == kKHardSwish))
    fail("the elementwise constants are for another function than the kernel's");
  std::vector<int64_t> mult;
  for (int32_t b = 0; b < n_in; ++b) mult.push_back(kc.next());
  const int32_t shift = kc.next(), lo = kc.next(), hi = kc.next();
  if (shift < 0 || shift > 62) fail("bad elementwise shift");
  int8_t table[256] = {};  // op 4: 64 words of 4 entries, entry 4k + j in byte j of word k
  if (op == 4)
    for (int w = 0; w < 64; ++w) {
      const uint32_t v = static_cast<uint32_t>(kc.next());
      for (int j = 0; j < 4; ++j) table[4 * w + j] = static_cast<int8_t>(static_cast<uint8_t>(v >> (8 * j)));
    }
  if (op == 5 && (mult[0] < 0 || mult[0] > INT32_MAX)) fail("bad mul rescale constant");
  const q8::Requant prod{static_cast<int32_t>(op == 5 ? mult[0] : 1), shift};
  const std::vector<q8::Requant> posts = kc.posts();
  check_fits("input tile", c.in_l, c.oh, c.ow, c.co);
  check_fits("output tile", c.out_l, c.oh, c.ow, c.co);
  int8_t* out = reinterpret_cast<int8_t*>(c.out);
  const int64_t round = shift > 0 ? (int64_t{1} << (shift - 1)) : 0;
  for (int64_t y = 0; y < c.oh; ++y)
    for (int64_t x = 0; x < c.ow; ++x) {
      int8_t* o = out + (y * c.out_l.cols + x) * c.out_l.pitch;
      for (int64_t ch = 0; ch < c.co; ++ch) {
        const int64_t at = (y * c.in_l.cols + x) * c.in_l.pitch + ch;
        const int8_t* in0 = reinterpret_cast<const int8_t*>(c.in[0]);
        int32_t v;
        if (op == 0) {
          int64_t s = round;
          for (int32_t b = 0; b < n_in; ++b) s += int64_t{reinterpret_cast<const int8_t*>(c.in[b])[at]} * mult[static_cast<size_t>(b)];
          v = q8::clamp(s >> shift, lo, hi);
        } else if (op == 5) {
          const int8_t s = reinterpret_cast<const int8_t*>(c.in[1])[second_at(k, at, ch)];
          v = q8::requantize(int64_t{in0[at]} * s, prod, lo, hi);
        } else {
          v = in0[at];
          if (op == 1) v = std::max(v, 0);
          if (op == 3) v = q8::clamp(v, lo, hi);
          if (op == 4) v = table[v + 128];
        }
        o[ch] = post(v, posts);
      }
    }
}

}  // namespace

void run_kernel(const KernelCall& c) {
  if (c.oh <= 0 || c.ow <= 0 || c.co <= 0) return;
  if (c.dtype == DType::Int8) {
    switch (c.k->kind) {
      case KKind::Conv: return conv_int8(c);
      case KKind::MaxPool:
      case KKind::AvgPool: return pool_int8(c);
      case KKind::Eltwise: return eltwise_int8(c);
      case KKind::Softmax: fail("int8 programs have no softmax kernel (the host applies a final softmax)");
    }
  }
  if (c.dtype != DType::FP32) fail("the simulator runs fp32 and int8 programs, not {}", dtype_name(c.dtype));
  switch (c.k->kind) {
    case KKind::Conv: return conv_fp32(c);
    case KKind::MaxPool:
    case KKind::AvgPool: return pool_fp32(c);
    case KKind::Eltwise: return eltwise_fp32(c);
    case KKind::Softmax: return softmax_fp32(c);
  }
  fail("unknown kernel kind");
}

}  // namespace bsp::aie2
