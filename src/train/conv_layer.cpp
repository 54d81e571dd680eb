// conv2d forward / backward on channel-major activations (net.hpp).
//
// Fast path (stride 1, one group; any kernel, padding, dilation): a
// "shared-padding" flat layout. The n images of a channel are stacked in
// one padded plane, rows of Wp = W + Pl floats (Pl zero columns, then the W
// pixels) and Hs = H + Pt rows per image (Pt zero rows, then the H rows),
// Pl = max(pad left, right), Pt = max(pad top, bottom): the zero columns on
// the left of a row are also the right padding of the row before, and an
// image's zero rows the bottom padding of the image before. Then output
// position o = (j * Hs + ho) * Wp + wo reads input o + tap(i, j) for every
// kernel tap, one shift per tap: the convolution is igemm8 over the whole
// plane with K entries (ci, i, j) -> ci * S_in + tap(i, j), no im2col.
// Positions with ho >= Ho or wo >= Wo are computed and thrown away (7% of a
// 28x28 map, 23% of 7x7).
//   data gradient: the same igemm8 with W^T and negative shifts over the
//     output gradient placed in the same flat layout (zeros elsewhere);
//   weight gradient: rowdot8 of that output gradient with the shifted input.
//
// Generic path (strides, groups): per chunk of images, an explicit im2col
// panel [K, P] and the same kernels with off[k] = k * P; col2im for the
// data gradient.
//
// Block sparsity: the K lists only hold the 8x8 channel blocks that have a
// kept weight (plan.hpp), in the forward, data-gradient and weight-gradient
// passes alike. BDWP (net.hpp DualMask): the forward and data-gradient K
// lists hold only the entries some row of the 8-row block keeps in that
// pass's mask, rebuilt when the masks change; the weight gradient stays dense.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/shapes.hpp"
#include "train/layers.hpp"
#include "train/plan.hpp"

namespace bsp::train {

namespace {

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

constexpr int64_t kTile = 48;  // flat positions per igemm8 tile

// The valid positions of flat tile [p0, p0 + P) of a shared-padding plane
// (rows of Wp, Hs rows per image; flat index = base + tile index): in each
// image, rows [r0, r0 + nr) and columns [c0, c0 + nc) hold real pixels, whose
// dense index is (j * nr + row - r0) * nc + col - c0. Calls
// f(tile offset, dense index, count) once per run of consecutive valid
// positions, so a tile's result goes to its dense place while still in cache.
template <class F>
void for_valid_runs(int64_t p0, int64_t P, int64_t base, int64_t Wp, int64_t Hs, int64_t r0, int64_t nr, int64_t c0,
                    int64_t nc, F&& f) {
  int64_t o = base + p0;
  const int64_t end = o + P;
  int64_t row = o / Wp, col = o - row * Wp;
  while (o < end) {
    const int64_t run_end = std::min(end, o + Wp - col);
    const int64_t j = row / Hs, r = row - j * Hs - r0;
    if (r >= 0 && r < nr) {
      const int64_t ca = std::max(col, c0), cb = std::min(col + run_end - o, c0 + nc);
      if (cb > ca) f(o - base - p0 + ca - col, (j * nr + r) * nc + ca - c0, cb - ca);
    }
    o = run_end;
    ++row;
    col = 0;
  }
}

class ConvLayer : public BoundLayer {
 public:
  explicit ConvLayer(const LayerArgs& a) : BoundLayer(a) {
    Value* x = in[0];
    g_ = conv_geom(*a.node, Shape{x->H, x->W, x->C});
    G_ = g_.groups;
    cin_g_ = g_.cin_per_group();
    cout_g_ = g_.cout_per_group();
    taps_ = g_.kh * g_.kw;
    K_ = taps_ * cin_g_;
    fast_ = g_.sh == 1 && g_.sw == 1 && G_ == 1 && a.conv_path == ConvPath::Auto;
    if (fast_) {
      Pt_ = std::max(g_.pt, g_.pb);
      Pl_ = std::max(g_.pl, g_.pr);
      Hs_ = g_.H + Pt_;
      Wp_ = g_.W + Pl_;
      fast_ = g_.Ho <= Hs_ && g_.Wo <= Wp_;
    }
    w_ = a.training ? add_param(a, "weight", true) : nullptr;
    if (a.training && node->has_param("bias")) b_ = add_param(a, "bias", true);
    training_ = a.training;
    mask_changed_impl();
  }

  void mask_changed() override {
    mask_changed_impl();
    if (n_ > 0) build_plans();
    weights_changed();
  }

  void set_dual(const DualMask* d) {
    dual_ = d;
    mask_changed();
  }

  void batch_changed(int64_t n) override {
    if (n == n_) return;
    n_ = n;
    if (fast_) {
      Q_ = n * Hs_ * Wp_;
      M_ = tap(g_.kh - 1, g_.kw - 1);
      // Reads reach o + M_ for o < Q (every tap of the last position), and
      // the last image's bottom padding ends at Q + Pt rows: sized by the
      // window's extent, not by kh * dh (a 1x1 kernel dilated by 2^24 would
      // ask for 2^24 rows), with a row and 64 floats of slack.
      S_in_ = round16(std::max(Q_ + M_, Q_ + Pt_ * Wp_) + Wp_ + 64);
      S_dy_ = round16(M_ + Q_ + 64);
      xpad_ = Tensor({g_.C, S_in_});  // zero padding stays: only pixels are rewritten
      if (training_) dyw_ = Tensor({round8(g_.Cout), S_dy_});
    } else {
      const int64_t hw = g_.Ho * g_.Wo;
      chunk_imgs_ = std::max<int64_t>(1, std::min<int64_t>(n, (384 + hw - 1) / hw));
      Pc_ = chunk_imgs_ * hw;
    }
    build_plans();
    weights_changed();
  }

  void weights_changed() override {
    if (n_ <= 0) return;
    if (dual_ && dual_->compact && dual_->version != plan_version_) build_plans();  // new BDWP masks: new K lists
    const float* W = node->param("weight").data();
    const uint8_t* mf = dual_ ? dual_->fwd.data() : nullptr;
    const uint8_t* mb = dual_ ? dual_->bwd.data() : nullptr;
    for (int64_t gi = 0; gi < G_; ++gi) {
      const float* Wg = W + gi * cout_g_ * K_;
      fwd_[static_cast<size_t>(gi)].pack(Wg, mf ? mf + gi * cout_g_ * K_ : nullptr);
      if (training_) dgr_[static_cast<size_t>(gi)].pack(Wg, mb ? mb + gi * cout_g_ * K_ : nullptr);
    }
  }

  void forward(const Ctx& c) override {
    if (fast_)
      forward_fast(c);
    else
      forward_generic(c);
  }

  void backward(const Ctx& c) override {
    if (fast_)
      backward_fast(c);
    else
      backward_generic(c);
    if (b_) bias_grad(c);
  }

 private:
  // ---- geometry ----
  // Flat shift of kernel tap (i, j) in the shared-padding layout.
  int64_t tap(int64_t i, int64_t j) const { return (Pt_ - g_.pt + i * g_.dh) * Wp_ + (Pl_ - g_.pl + j * g_.dw); }

  void mask_changed_impl() {
    emask_ = held_mask(*node);
    // BDWP masks change every step and keep (N:M) something in every block.
    if (!emask_.empty() && !dual_ && G_ == 1)
      keep_ = block_grid(emask_.data(), g_.Cout, taps_, cin_g_);
    else
      keep_ = full_block_grid(G_ == 1 ? g_.Cout : 8, G_ == 1 ? cin_g_ : 8);
  }

  // BDWP: whether any of the rows r0 .. r0 + 7 (those below `rows`) keeps
  // element r * stride + e of mask m (the group's part of a DualMask).
  static bool any_row(const uint8_t* m, int64_t r0, int64_t rows, int64_t stride, int64_t e) {
    for (int64_t r = r0; r < std::min(rows, r0 + 8); ++r)
      if (m[r * stride + e]) return true;
    return false;
  }

  // K lists for batch n_ (offsets depend on the plane sizes).
  void build_plans() {
    fwd_.resize(static_cast<size_t>(G_));
    dgr_.resize(static_cast<size_t>(G_));
    wgr_.resize(dual_ && training_ ? static_cast<size_t>(G_) : 0);
    plan_version_ = dual_ ? dual_->version : 0;
    const int64_t cib = (cin_g_ + 7) / 8, cob = (cout_g_ + 7) / 8;
    for (int64_t gi = 0; gi < G_; ++gi) {
      PassPlan& f = fwd_[static_cast<size_t>(gi)];
      PassPlan& d = dgr_[static_cast<size_t>(gi)];
      const bool compact = dual_ && dual_->compact;
      const uint8_t* mf = compact ? dual_->fwd.data() + gi * cout_g_ * K_ : nullptr;
      const uint8_t* mb = compact ? dual_->bwd.data() + gi * cout_g_ * K_ : nullptr;
      f.reset(cout_g_, K_);
      PassPlan* w = wgr_.empty() ? nullptr : &wgr_[static_cast<size_t>(gi)];
      if (w) w->reset(cout_g_, K_);
      for (int64_t rb = 0; rb < cob; ++rb) {
        for (int64_t ib = 0; ib < cib; ++ib) {
          if (G_ == 1 && !keep_(rb, ib)) continue;
          for (int64_t i = 0; i < g_.kh; ++i)
            for (int64_t j = 0; j < g_.kw; ++j)
              for (int64_t ci = ib * 8; ci < std::min(cin_g_, ib * 8 + 8); ++ci) {
                const int64_t k = (i * g_.kw + j) * cin_g_ + ci;
                const int64_t o = fast_ ? ci * S_in_ + tap(i, j) : k * Pc_;
                if (w) w->add(k, o);
                if (mf && !any_row(mf, rb * 8, cout_g_, K_, k)) continue;
                f.add(k, o);
              }
        }
        f.end_block();
        if (w) w->end_block();
      }
      if (!training_) continue;
      if (fast_) {
        // Rows: input channels; entries: (co, i, j) of the kept blocks.
        d.reset(cin_g_, 1);
        for (int64_t rb = 0; rb < cib; ++rb) {
          for (int64_t ob = 0; ob < cob; ++ob) {
            if (!keep_(ob, rb)) continue;
            for (int64_t co = ob * 8; co < std::min(g_.Cout, ob * 8 + 8); ++co)
              for (int64_t i = 0; i < g_.kh; ++i)
                for (int64_t j = 0; j < g_.kw; ++j) {
                  const int64_t e = co * K_ + (i * g_.kw + j) * cin_g_;
                  if (mb && !any_row(mb, rb * 8, cin_g_, 1, e)) continue;
                  d.add(e, co * S_dy_ - tap(i, j));
                }
          }
          d.end_block();
        }
      } else {
        // Rows: im2col rows k = (i, j, ci); entries: the group's output channels.
        const int64_t plane = n_ * g_.Ho * g_.Wo;
        d.reset(K_, 1);
        for (int64_t rb = 0; rb < (K_ + 7) / 8; ++rb) {
          // The 8 rows share (i, j) and one input block when cin_g is a multiple of 8.
          const bool one_block = G_ == 1 && cin_g_ % 8 == 0;
          const int64_t ib = ((rb * 8) % cin_g_) / 8;
          for (int64_t co = 0; co < cout_g_; ++co) {
            if (one_block && !keep_(co / 8, ib)) continue;
            if (mb && !any_row(mb, rb * 8, K_, 1, co * K_)) continue;
            d.add(co * K_, (gi * cout_g_ + co) * plane);
          }
          d.end_block();
        }
      }
    }
  }

  // The weight gradient's K list: the forward's, or under BDWP (dense
  // weight gradient) every entry.
  const PassPlan& wgrad_plan(int64_t gi) const {
    return (dual_ && dual_->dense_wgrad ? wgr_ : fwd_)[static_cast<size_t>(gi)];
  }

  // ---- fast path ----
  void forward_fast(const Ctx& c) {
    const Value* x = in[0];
    const int64_t n = c.n, H = g_.H, W = g_.W, Cin = g_.C, Cout = g_.Cout;
    const int64_t plane_in = x->plane(n);
    // Pixels into the padded plane (xpad [Cin, S_in]); the padding is zero from allocation.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t h = 0; h < H; ++h)
          std::memcpy(xpad_.data() + ci * S_in_ + (j * Hs_ + Pt_ + h) * Wp_ + Pl_,
                      x->act.data() + ci * plane_in + (j * H + h) * W, static_cast<size_t>(W) * sizeof(float));
    // Per thread a tile [round8(Cout), kTile] of the output at every flat
    // position; its valid positions go to y [Cout, n, Ho, Wo] (plus the bias)
    // while the tile is in cache.
    const int64_t rows8 = round8(Cout);
    float* tiles_buf = c.scratch->get(0, static_cast<size_t>(omp_get_max_threads() * rows8 * kTile));
    const PassPlan& f = fwd_[0];
    const int64_t tiles = (Q_ + kTile - 1) / kTile, nb = f.blocks();
    const KernelSet& k = *c.k;
    const int64_t Ho = g_.Ho, Wo = g_.Wo, plane_out = out->plane(n);
    const float* bias = node->has_param("bias") ? node->param("bias").data() : nullptr;
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t ti = 0; ti < tiles; ++ti) {
      float* tb = tiles_buf + omp_get_thread_num() * rows8 * kTile;
      const int64_t p0 = ti * kTile, P = std::min<int64_t>(kTile, Q_ - p0);
      for (int64_t rb = 0; rb < nb; ++rb)
        k.igemm8(f.block_A(rb), f.block_off(rb), f.block_T(rb), xpad_.data() + p0, P, tb + rb * 8 * kTile, kTile,
                 false);
      for_valid_runs(p0, P, 0, Wp_, Hs_, 0, Ho, 0, Wo, [&](int64_t s, int64_t d, int64_t len) {
        for (int64_t co = 0; co < Cout; ++co) {
          const float bv = bias ? bias[co] : 0.0f;
          const float* src = tb + co * kTile + s;
          float* dst = y + co * plane_out + d;
          for (int64_t l = 0; l < len; ++l) dst[l] = src[l] + bv;
        }
      });
    }
  }

  void backward_fast(const Ctx& c) {
    const int64_t n = c.n, H = g_.H, W = g_.W, Cin = g_.C, Cout = g_.Cout, Ho = g_.Ho, Wo = g_.Wo;
    const int64_t plane_out = out->plane(n);
    // dyw [round8(Cout), S_dy]: dy at M + o for the valid positions o; zero
    // elsewhere (from allocation: only valid positions are ever written).
    const float* dy = out->grad.data();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t ho = 0; ho < Ho; ++ho)
          std::memcpy(dyw_.data() + co * S_dy_ + M_ + (j * Hs_ + ho) * Wp_, dy + co * plane_out + (j * Ho + ho) * Wo,
                      static_cast<size_t>(Wo) * sizeof(float));
    const KernelSet& k = *c.k;

    // Weight gradient: dW[co, k] = sum_o dyw[co, M + o] * xpad[ci, o + tap].
    {
      const PassPlan& f = wgrad_plan(0);
      const int64_t nb = f.blocks();
      const int nt = omp_get_max_threads();
      parts_.resize(static_cast<size_t>(nt));
#pragma omp parallel num_threads(nt)
      {
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        Tensor& part = parts_[static_cast<size_t>(t)];
        if (part.size() != static_cast<size_t>(round8(Cout) * K_)) part = Tensor({round8(Cout), K_});
        part.fill(0.0f);
        const int64_t q0 = Q_ * t / tn, q1 = Q_ * (t + 1) / tn;
        constexpr int64_t kChunk = 1024;
        for (int64_t p0 = q0; p0 < q1; p0 += kChunk) {
          const int64_t P = std::min(kChunk, q1 - p0);
          for (int64_t rb = 0; rb < nb; ++rb)
            k.rowdot8(dyw_.data() + rb * 8 * S_dy_ + M_ + p0, S_dy_, static_cast<int>(f.block_rows(rb)),
                      f.block_off(rb), f.block_kidx(rb), f.block_T(rb), xpad_.data() + p0, P,
                      part.data() + rb * 8 * K_, K_);
        }
      }
      reduce_parts(nt, w_->grad.data(), Cout * K_);
    }

    // Data gradient over flat input positions f in [Pt * Wp, Q).
    Value* x = in[0];
    if (x->grad.empty()) return;
    const PassPlan& d = dgr_[0];
    // Data gradient tile by tile over flat input positions [F0, Q) (tile
    // [round8(Cin), kTile] per thread); valid positions go to dx [Cin, n, H, W].
    const int64_t F0 = Pt_ * Wp_, F = Q_ - F0, rows8 = round8(Cin);
    float* tiles_buf = c.scratch->get(1, static_cast<size_t>(omp_get_max_threads() * rows8 * kTile));
    const int64_t tiles = (F + kTile - 1) / kTile, nb = d.blocks();
    const float* B = dyw_.data() + M_ + F0;
    const int64_t plane_in = x->plane(n);
    const bool add = in_add[0];
    float* dx = x->grad.data();
#pragma omp parallel for schedule(static)
    for (int64_t ti = 0; ti < tiles; ++ti) {
      float* tb = tiles_buf + omp_get_thread_num() * rows8 * kTile;
      const int64_t p0 = ti * kTile, P = std::min<int64_t>(kTile, F - p0);
      for (int64_t rb = 0; rb < nb; ++rb)
        k.igemm8(d.block_A(rb), d.block_off(rb), d.block_T(rb), B + p0, P, tb + rb * 8 * kTile, kTile, false);
      for_valid_runs(p0, P, F0, Wp_, Hs_, Pt_, H, Pl_, W, [&](int64_t s, int64_t o, int64_t len) {
        for (int64_t ci = 0; ci < Cin; ++ci) {
          const float* src = tb + ci * kTile + s;
          float* dst = dx + ci * plane_in + o;
          if (add)
            for (int64_t l = 0; l < len; ++l) dst[l] += src[l];
          else
            std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(float));
        }
      });
    }
  }

  // ---- generic path ----
  // The output columns wo whose input column wo * sw - pl + jj * dw lies
  // inside the map: [lo, hi) (empty when lo >= hi).
  void valid_cols(int64_t jj, int64_t& lo, int64_t& hi) const {
    const int64_t s = g_.sw, c = jj * g_.dw - g_.pl;  // w = wo * s + c
    lo = c >= 0 ? 0 : (-c + s - 1) / s;
    hi = g_.W - c > 0 ? std::min(g_.Wo, (g_.W - c + s - 1) / s) : 0;
    lo = std::min(lo, g_.Wo);
    hi = std::max(hi, lo);
  }

  // Visits every row of col [K, Pc] for images j0 .. j0 + cnt of group gi
  // as f(col_off, in_off, lo, hi, c): col_off, the row's first element in
  // col; in_off, the input row's first element in x (or dx), -1 when the row
  // lies in the padding; [lo, hi), the output columns wo whose input column
  // wo * sw + c lies inside the map.
  template <typename F>
  void for_each_col_row(int64_t plane_in, int64_t gi, int64_t j0, int64_t cnt, F&& f) const {
    const int64_t H = g_.H, W = g_.W, Ho = g_.Ho, Wo = g_.Wo;
    for (int64_t i = 0; i < g_.kh; ++i)
      for (int64_t jj = 0; jj < g_.kw; ++jj) {
        int64_t lo, hi;
        valid_cols(jj, lo, hi);
        const int64_t c = jj * g_.dw - g_.pl;
        for (int64_t ci = 0; ci < cin_g_; ++ci) {
          const int64_t row0 = ((i * g_.kw + jj) * cin_g_ + ci) * Pc_, plane0 = (gi * cin_g_ + ci) * plane_in;
          for (int64_t im = 0; im < cnt; ++im)
            for (int64_t ho = 0; ho < Ho; ++ho) {
              const int64_t h = ho * g_.sh - g_.pt + i * g_.dh;
              f(row0 + (im * Ho + ho) * Wo, h < 0 || h >= H ? -1 : plane0 + ((j0 + im) * H + h) * W, lo, hi, c);
            }
        }
      }
  }

  // col [K, Pc] for images j0 .. j0 + cnt of group gi.
  void im2col(const float* x, int64_t plane_in, int64_t gi, int64_t j0, int64_t cnt, float* col) const {
    const int64_t Wo = g_.Wo, sw = g_.sw;
    for_each_col_row(plane_in, gi, j0, cnt, [&](int64_t col_off, int64_t in_off, int64_t lo, int64_t hi, int64_t c) {
      float* r = col + col_off;
      if (in_off < 0) {
        std::fill(r, r + Wo, 0.0f);
        return;
      }
      const float* xr = x + in_off;
      std::fill(r, r + lo, 0.0f);
      for (int64_t wo = lo; wo < hi; ++wo) r[wo] = xr[wo * sw + c];
      std::fill(r + hi, r + Wo, 0.0f);
    });
  }

  // dx += the scatter of col [K, Pc] (im2col's transpose).
  void col2im_add(const float* col, int64_t gi, int64_t j0, int64_t cnt, float* dx, int64_t plane_in) const {
    const int64_t sw = g_.sw;
    for_each_col_row(plane_in, gi, j0, cnt, [&](int64_t col_off, int64_t in_off, int64_t lo, int64_t hi, int64_t c) {
      if (in_off < 0) return;
      const float* r = col + col_off;
      float* dr = dx + in_off;
      for (int64_t wo = lo; wo < hi; ++wo) dr[wo * sw + c] += r[wo];
    });
  }

  // Writes one row block of igemm8 into C (ldc), through a temporary when
  // the block has fewer than 8 real rows (they would overwrite other rows).
  static void igemm_rows(const KernelSet& k, const PassPlan& p, int64_t rb, const float* B, int64_t P, float* C,
                         int64_t ldc, float* tmp, int64_t ldt) {
    const int64_t rows = p.block_rows(rb);
    if (rows == 8) {
      k.igemm8(p.block_A(rb), p.block_off(rb), p.block_T(rb), B, P, C, ldc, false);
      return;
    }
    k.igemm8(p.block_A(rb), p.block_off(rb), p.block_T(rb), B, P, tmp, ldt, false);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(C + r * ldc, tmp + r * ldt, static_cast<size_t>(P) * sizeof(float));
  }

  void forward_generic(const Ctx& c) {
    const Value* x = in[0];
    const int64_t n = c.n, plane_in = x->plane(n), plane_out = out->plane(n), hw = g_.Ho * g_.Wo;
    const int64_t chunks = (n + chunk_imgs_ - 1) / chunk_imgs_;
    const KernelSet& k = *c.k;
    const int nt = omp_get_max_threads();
    float* scratch = c.scratch->get(0, static_cast<size_t>(nt) * static_cast<size_t>((K_ + 8) * Pc_));
    const float* bias = node->has_param("bias") ? node->param("bias").data() : nullptr;
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      float* col = scratch + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>((K_ + 8) * Pc_);
      float* tmp = col + K_ * Pc_;
      const int64_t j0 = ch * chunk_imgs_, cnt = std::min(chunk_imgs_, n - j0), P = cnt * hw;
      for (int64_t gi = 0; gi < G_; ++gi) {
        im2col(x->act.data(), plane_in, gi, j0, cnt, col);
        const PassPlan& f = fwd_[static_cast<size_t>(gi)];
        for (int64_t rb = 0; rb < f.blocks(); ++rb)
          igemm_rows(k, f, rb, col, P, out->act.data() + (gi * cout_g_ + rb * 8) * plane_out + j0 * hw, plane_out,
                     tmp, Pc_);
      }
      if (bias)
        for (int64_t co = 0; co < g_.Cout; ++co) {
          float* y = out->act.data() + co * plane_out + j0 * hw;
          for (int64_t p = 0; p < P; ++p) y[p] += bias[co];
        }
    }
  }

  void backward_generic(const Ctx& c) {
    Value* x = in[0];
    const int64_t n = c.n, plane_in = x->plane(n), plane_out = out->plane(n), hw = g_.Ho * g_.Wo;
    const int64_t chunks = (n + chunk_imgs_ - 1) / chunk_imgs_;
    const KernelSet& k = *c.k;
    const int nt = omp_get_max_threads();
    const bool want_dx = !x->grad.empty();
    if (want_dx && !in_add[0]) {
      // col2im accumulates: start from zero.
#pragma omp parallel for schedule(static)
      for (int64_t ci = 0; ci < g_.C; ++ci)
        std::memset(x->grad.data() + ci * plane_in, 0, static_cast<size_t>(plane_in) * sizeof(float));
    }
    const size_t per_thread = static_cast<size_t>((K_ + round8(K_) + 8) * Pc_);
    float* scratch = c.scratch->get(0, static_cast<size_t>(nt) * per_thread);
    parts_.resize(static_cast<size_t>(nt));
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      Tensor& part = parts_[static_cast<size_t>(t)];
      if (part.size() != static_cast<size_t>(round8(g_.Cout) * K_)) part = Tensor({round8(g_.Cout), K_});
      part.fill(0.0f);
      float* col = scratch + static_cast<size_t>(t) * per_thread;
      float* dcol = col + K_ * Pc_;
#pragma omp for schedule(static)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t j0 = ch * chunk_imgs_, cnt = std::min(chunk_imgs_, n - j0), P = cnt * hw;
        for (int64_t gi = 0; gi < G_; ++gi) {
          im2col(x->act.data(), plane_in, gi, j0, cnt, col);
          const PassPlan& f = wgrad_plan(gi);
          for (int64_t rb = 0; rb < f.blocks(); ++rb) {
            const int64_t co0 = gi * cout_g_ + rb * 8;
            k.rowdot8(out->grad.data() + co0 * plane_out + j0 * hw, plane_out, static_cast<int>(f.block_rows(rb)),
                      f.block_off(rb), f.block_kidx(rb), f.block_T(rb), col, P, part.data() + co0 * K_, K_);
          }
          if (!want_dx) continue;
          const PassPlan& d = dgr_[static_cast<size_t>(gi)];
          for (int64_t rb = 0; rb < d.blocks(); ++rb)
            k.igemm8(d.block_A(rb), d.block_off(rb), d.block_T(rb), out->grad.data() + j0 * hw, P,
                     dcol + rb * 8 * Pc_, Pc_, false);
          col2im_add(dcol, gi, j0, cnt, x->grad.data(), plane_in);
        }
      }
    }
    reduce_parts(nt, w_->grad.data(), g_.Cout * K_);
  }

  // dst[e] = sum over threads of parts_[t][e], in thread order.
  void reduce_parts(int nt, float* dst, int64_t count) {
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < count; ++e) {
      float s = 0.0f;
      for (int t = 0; t < nt; ++t) s += parts_[static_cast<size_t>(t)][static_cast<size_t>(e)];
      dst[e] = s;
    }
  }

  void bias_grad(const Ctx& c) {
    const int64_t plane = out->plane(c.n);
    float* db = b_->grad.data();
#pragma omp parallel for schedule(static)
    for (int64_t co = 0; co < g_.Cout; ++co) {
      const float* dy = out->grad.data() + co * plane;
      double s = 0;
      for (int64_t p = 0; p < plane; ++p) s += dy[p];
      db[co] = static_cast<float>(s);
    }
  }

  ConvGeom g_;
  int64_t G_ = 1, cin_g_ = 0, cout_g_ = 0, taps_ = 0, K_ = 0;
  bool fast_ = false, training_ = false;
  Param* w_ = nullptr;
  Param* b_ = nullptr;
  Array<uint8_t> emask_;
  const DualMask* dual_ = nullptr;
  uint64_t plan_version_ = 0;  // the DualMask version the K lists were built for
  BlockKeep keep_;
  int64_t n_ = -1;
  // fast path, for batch n_
  int64_t Pt_ = 0, Pl_ = 0, Hs_ = 0, Wp_ = 0, Q_ = 0, S_in_ = 0, M_ = 0, S_dy_ = 0;
  Tensor xpad_;  // [Cin, S_in]: the padded input, kept for the weight gradient
  Tensor dyw_;   // [round8(Cout), S_dy]: the output gradient in the flat layout
  // generic path
  int64_t chunk_imgs_ = 1, Pc_ = 0;
  std::vector<PassPlan> fwd_, dgr_;  // per group
  std::vector<PassPlan> wgr_;        // per group, BDWP only: every K entry (the weight gradient is dense)
  std::vector<Tensor> parts_;        // per-thread weight gradients
};

}  // namespace

std::unique_ptr<Layer> make_conv(const LayerArgs& a) { return std::make_unique<ConvLayer>(a); }

void set_conv_dual_mask(Layer* l, const DualMask* d) { static_cast<ConvLayer*>(l)->set_dual(d); }

}  // namespace bsp::train
