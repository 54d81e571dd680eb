// dense forward / backward on feature-major vectors x [F, n] (net.hpp):
//   y [O, n] = W [O, F] . x + b      igemm8, rows = output blocks
//   dx [F, n] = W^T . dy              igemm8, rows = input blocks
//   dW [O, F] = dy . x^T              igemm8 over x^T, K = the batch
// Zero 8x8 weight blocks are left out of all three (plan.hpp). BDWP (net.hpp
// DualMask): the forward and data-gradient K lists hold only the entries
// some row of the 8-row block keeps; the weight gradient stays dense.
#include <algorithm>
#include <vector>

#include "train/layers.hpp"
#include "train/plan.hpp"

namespace bsp::train {

namespace {

class DenseLayer : public BoundLayer {
 public:
  explicit DenseLayer(const LayerArgs& a) : BoundLayer(a) {
    const Tensor& w = node->param("weight");
    O_ = w.dim(0);
    F_ = w.dim(1);
    if (in[0]->C * in[0]->H * in[0]->W != F_ || in[0]->H * in[0]->W != 1)
      fail("node '{}': dense input must be a vector of {} features", node->name, F_);
    training_ = a.training;
    if (training_) {
      w_ = add_param(a, "weight", true);
      if (node->has_param("bias")) b_ = add_param(a, "bias", true);
    }
    rebuild_keep();
  }

  void set_dual(const DualMask* d) {
    dual_ = d;
    mask_changed();
  }

  void mask_changed() override {
    rebuild_keep();
    if (n_ > 0) build_plans();
    weights_changed();
  }

  void batch_changed(int64_t n) override {
    if (n == n_) return;
    n_ = n;
    build_plans();
    weights_changed();
  }

  void weights_changed() override {
    if (n_ <= 0) return;
    if (dual_ && dual_->compact && dual_->version != plan_version_) build_plans();  // new BDWP masks: new K lists
    const float* W = node->param("weight").data();
    fwd_.pack(W, dual_ ? dual_->fwd.data() : nullptr);
    if (training_) dgr_.pack(W, dual_ ? dual_->bwd.data() : nullptr);
  }

  void forward(const Ctx& c) override {
    const int64_t n = c.n, nb = fwd_.blocks();
    const KernelSet& k = *c.k;
    const float* x = in[0]->act.data();
    float* y = out->act.data();
    const float* bias = node->has_param("bias") ? node->param("bias").data() : nullptr;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t rb = 0; rb < nb; ++rb) {
      k.igemm8(fwd_.block_A(rb), fwd_.block_off(rb), fwd_.block_T(rb), x, n, y + rb * 8 * n, n, false);
      if (bias)
        for (int64_t o = rb * 8; o < std::min(O_, rb * 8 + 8); ++o)
          for (int64_t j = 0; j < n; ++j) y[o * n + j] += bias[o];
    }
  }

  void backward(const Ctx& c) override {
    const int64_t n = c.n;
    const KernelSet& k = *c.k;
    const float* x = in[0]->act.data();
    const float* dy = out->grad.data();
    // dW [O, F] = dy [O, n] . x^T as igemm8 with K = the batch: per output
    // block, A[t][r] = dy[(rb * 8 + r) * n + t] and B = x^T [n, F] (rows t * F),
    // over the runs of kept input blocks only. (rowdot8 over positions would
    // spend as much on reducing its lanes as on multiplying for n = 128.)
    float* dw = w_->grad.data();
    float* xt = c.scratch->get(0, static_cast<size_t>(n * F_));
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < F_; ++i) xt[j * F_ + i] = x[i * n + j];
    if (static_cast<int64_t>(toff_.size()) != n) {
      toff_.resize(static_cast<size_t>(n));
      for (int64_t t = 0; t < n; ++t) toff_[static_cast<size_t>(t)] = t * F_;
    }
    const int64_t nb = fwd_.blocks(), ib = keep_.cols;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t rb = 0; rb < nb; ++rb) {
      const int64_t rows = fwd_.block_rows(rb);
      std::vector<float> a(static_cast<size_t>(n * 8), 0.0f), tmp;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) a[static_cast<size_t>(t * 8 + r)] = dy[(rb * 8 + r) * n + t];
      float* d = dw + rb * 8 * F_;
      std::fill(d, d + rows * F_, 0.0f);
      for (int64_t b0 = 0; b0 < ib;) {
        if (!keep_(rb, b0)) {
          ++b0;
          continue;
        }
        int64_t b1 = b0;
        while (b1 < ib && keep_(rb, b1)) ++b1;
        const int64_t p0 = b0 * 8, P = std::min(F_, b1 * 8) - p0;
        if (rows == 8) {
          k.igemm8(a.data(), toff_.data(), n, xt + p0, P, d + p0, F_, false);
        } else {
          tmp.resize(static_cast<size_t>(8 * P));
          k.igemm8(a.data(), toff_.data(), n, xt + p0, P, tmp.data(), P, false);
          for (int64_t r = 0; r < rows; ++r) std::copy(tmp.begin() + r * P, tmp.begin() + (r + 1) * P, d + r * F_ + p0);
        }
        b0 = b1;
      }
    }
    if (b_) {
      float* db = b_->grad.data();
      for (int64_t o = 0; o < O_; ++o) {
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += dy[o * n + j];
        db[o] = static_cast<float>(s);
      }
    }
    Value* xin = in[0];
    if (xin->grad.empty()) return;
    float* dx = xin->grad.data();
    const bool add = in_add[0];
    const int64_t db_n = dgr_.blocks();
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t rb = 0; rb < db_n; ++rb)  // rows past F are buffer padding: harmless to write
      k.igemm8(dgr_.block_A(rb), dgr_.block_off(rb), dgr_.block_T(rb), dy, n, dx + rb * 8 * n, n, add);
  }

 private:
  void rebuild_keep() {
    Array<uint8_t> m = held_mask(*node);
    keep_ = (!m.empty() && !dual_) ? block_grid(m.data(), O_, 1, F_) : full_block_grid(O_, F_);
  }

  // BDWP: whether any of the rows r0 .. r0 + 7 (those below `rows`) keeps
  // element r * stride + e of mask m.
  static bool any_row(const uint8_t* m, int64_t r0, int64_t rows, int64_t stride, int64_t e) {
    for (int64_t r = r0; r < std::min(rows, r0 + 8); ++r)
      if (m[r * stride + e]) return true;
    return false;
  }

  void build_plans() {
    const int64_t n = n_, ob = (O_ + 7) / 8, ib = (F_ + 7) / 8;
    const bool compact = dual_ && dual_->compact;
    const uint8_t* mf = compact ? dual_->fwd.data() : nullptr;
    const uint8_t* mb = compact ? dual_->bwd.data() : nullptr;
    plan_version_ = dual_ ? dual_->version : 0;
    fwd_.reset(O_, F_);
    for (int64_t rb = 0; rb < ob; ++rb) {
      for (int64_t b = 0; b < ib; ++b) {
        if (!keep_(rb, b)) continue;
        for (int64_t i = b * 8; i < std::min(F_, b * 8 + 8); ++i)
          if (!mf || any_row(mf, rb * 8, O_, F_, i)) fwd_.add(i, i * n);
      }
      fwd_.end_block();
    }
    if (!training_) return;
    dgr_.reset(F_, 1);
    for (int64_t rb = 0; rb < ib; ++rb) {
      for (int64_t b = 0; b < ob; ++b) {
        if (!keep_(b, rb)) continue;
        for (int64_t o = b * 8; o < std::min(O_, b * 8 + 8); ++o)
          if (!mb || any_row(mb, rb * 8, F_, 1, o * F_)) dgr_.add(o * F_, o * n);
      }
      dgr_.end_block();
    }
  }

  int64_t O_ = 0, F_ = 0, n_ = -1;
  bool training_ = false;
  Param* w_ = nullptr;
  Param* b_ = nullptr;
  const DualMask* dual_ = nullptr;
  uint64_t plan_version_ = 0;  // the DualMask version the K lists were built for
  BlockKeep keep_;
  PassPlan fwd_, dgr_;
  std::vector<int64_t> toff_;  // [n]: t * F, the rows of x^T
};

}  // namespace

std::unique_ptr<Layer> make_dense(const LayerArgs& a) { return std::make_unique<DenseLayer>(a); }

void set_dense_dual_mask(Layer* l, const DualMask* d) { static_cast<DenseLayer*>(l)->set_dual(d); }

}  // namespace bsp::train
