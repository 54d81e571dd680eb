// batchnorm forward / backward over channel rows x [C, M], M = n * H * W
// (net.hpp), optionally fused with the relu that follows it (the Net fuses
// a batchnorm whose only consumer is a relu: one pass over the data less in
// each direction). Training mode normalises with the batch statistics and
// updates the running statistics as PyTorch does (momentum 0.1, unbiased
// variance); eval mode uses the running statistics (the model's "mean" and
// "var").
#include <algorithm>
#include <cmath>
#include <vector>

#include "train/comm.hpp"
#include "train/layers.hpp"

namespace bsp::train {

namespace {

constexpr double kMomentum = 0.1;  // PyTorch's BatchNorm2d default
constexpr int64_t kChunk = 2048;   // float partial sums, then double

// s1 = sum over p < n of u, s2 = sum of v, where terms(p, u, v) adds one
// position's u and v: float lanes per chunk (vectorised), added up in double.
template <class Terms>
void chunked_sums(int64_t n, Terms terms, double& s1, double& s2) {
  s1 = s2 = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    float a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t p = c0; p < c1; ++p) terms(p, a, b);
    s1 += a;
    s2 += b;
  }
}

// sum(x - k) and sum((x - k)^2) over n floats: k, a value near the mean,
// keeps the variance free of cancellation.
void shifted_sums(const float* x, int64_t n, float k, double& s1, double& s2) {
  chunked_sums(
      n,
      [=](int64_t p, float& a, float& b) {
        const float d = x[p] - k;
        a += d;
        b += d * d;
      },
      s1, s2);
}

// sum g and sum g * (x - mean) over one channel, g the gradient reaching the
// batchnorm: relu_grad<Relu> (layers.hpp), dy or, with a fused relu, dy
// where y > 0.
template <bool Relu>
void channel_sums(const float* x, const float* y, const float* dy, int64_t n, float mean, double& sg, double& sgx) {
  chunked_sums(
      n,
      [=](int64_t p, float& a, float& b) {
        const float g = relu_grad<Relu>(y[p], dy[p]);
        a += g;
        b += g * (x[p] - mean);
      },
      sg, sgx);
}

// dx = k * (g - a - (x - mean) * b) over one channel, written or added.
template <bool Relu, bool Add>
void channel_dx(const float* x, const float* y, const float* dy, int64_t n, float mean, float k, float a, float b,
                float* dx) {
#pragma omp simd
  for (int64_t p = 0; p < n; ++p) {
    const float v = k * (relu_grad<Relu>(y[p], dy[p]) - a - (x[p] - mean) * b);
    if constexpr (Add)
      dx[p] += v;
    else
      dx[p] = v;
  }
}

// The two passes above with the relu and the add chosen at run time.
void channel_sums(bool relu, const float* x, const float* y, const float* dy, int64_t n, float mean, double& sg,
                  double& sgx) {
  relu ? channel_sums<true>(x, y, dy, n, mean, sg, sgx) : channel_sums<false>(x, y, dy, n, mean, sg, sgx);
}
void channel_dx(bool relu, bool add, const float* x, const float* y, const float* dy, int64_t n, float mean, float k,
                float a, float b, float* dx) {
  if (relu)
    add ? channel_dx<true, true>(x, y, dy, n, mean, k, a, b, dx) : channel_dx<true, false>(x, y, dy, n, mean, k, a, b, dx);
  else
    add ? channel_dx<false, true>(x, y, dy, n, mean, k, a, b, dx)
        : channel_dx<false, false>(x, y, dy, n, mean, k, a, b, dx);
}

class BatchNormLayer : public BoundLayer {
 public:
  BatchNormLayer(const LayerArgs& a, bool relu) : BoundLayer(a), relu_(relu) {
    mnode_ = a.node;
    C_ = out->C;
    eps_ = node->attrs.get_double("eps", 1e-5);
    if (a.training) {
      gamma_ = add_param(a, "gamma", true);
      beta_ = add_param(a, "beta", true);
    }
    mean_.assign(static_cast<size_t>(C_), 0.0f);
    invstd_.assign(static_cast<size_t>(C_), 0.0f);
  }

  void forward(const Ctx& c) override {
    const int64_t M = out->plane(c.n);
    const float* x = in[0]->act.data();
    float* y = out->act.data();
    const float* gamma = node->param("gamma").data();
    const float* beta = node->param("beta").data();
    float* rmean = mnode_->param("mean").data();  // running statistics, updated in training mode
    float* rvar = mnode_->param("var").data();
    mode_ = c.mode;
    synced_ = c.mode == Mode::Train && c.comm && c.comm->size() > 1;
    count_ = static_cast<double>(M);
    if (synced_) sync_statistics(c, x, M);
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      const float* xc = x + ch * M;
      float mean, invstd;
      if (synced_) {
        mean = mean_[static_cast<size_t>(ch)];
        invstd = invstd_[static_cast<size_t>(ch)];
      } else if (c.mode == Mode::Train) {
        const float k = xc[0];
        double s1, s2;
        shifted_sums(xc, M, k, s1, s2);
        const double d = s1 / static_cast<double>(M);
        const double m = k + d;
        const double var = std::max(0.0, s2 / static_cast<double>(M) - d * d);
        mean = static_cast<float>(m);
        invstd = static_cast<float>(1.0 / std::sqrt(var + eps_));
        const double unbiased = M > 1 ? var * static_cast<double>(M) / static_cast<double>(M - 1) : var;
        rmean[ch] = static_cast<float>((1.0 - kMomentum) * rmean[ch] + kMomentum * m);
        rvar[ch] = static_cast<float>((1.0 - kMomentum) * rvar[ch] + kMomentum * unbiased);
      } else {
        mean = rmean[ch];
        invstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rvar[ch]) + eps_));
      }
      mean_[static_cast<size_t>(ch)] = mean;
      invstd_[static_cast<size_t>(ch)] = invstd;
      const float sc = gamma[ch] * invstd, sh = beta[ch] - mean * sc;
      float* yc = y + ch * M;
      if (relu_) {
#pragma omp simd
        for (int64_t p = 0; p < M; ++p) yc[p] = std::max(xc[p] * sc + sh, 0.0f);
      } else {
#pragma omp simd
        for (int64_t p = 0; p < M; ++p) yc[p] = xc[p] * sc + sh;
      }
    }
  }

  // g = dy (fused relu: dy where y > 0, else 0); xhat = (x - mean) * invstd
  // Train:  dbeta = sum g,  dgamma = sum g * xhat,
  //         dx = gamma * invstd * (g - dbeta / M - xhat * dgamma / M)
  // Eval:   dx = gamma * invstd * g (the statistics are constants)
  // Data-parallel (sync-BN): the statistics are those of the whole global
  // batch; dgamma and dbeta stay this rank's sums (the trainer adds every
  // parameter gradient over the ranks), dx takes the global sums.
  void backward(const Ctx& c) override {
    if (synced_) return backward_synced(c);
    const int64_t M = out->plane(c.n);
    const float* x = in[0]->act.data();
    const float* y = out->act.data();
    const float* dy = out->grad.data();
    const float* gamma = node->param("gamma").data();
    float* dgamma = gamma_->grad.data();
    float* dbeta = beta_->grad.data();
    Value* xin = in[0];
    float* dx = xin->grad.empty() ? nullptr : xin->grad.data();
    const bool add = in_add[0];
    const bool train = mode_ == Mode::Train;
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      const int64_t o = ch * M;
      const float mean = mean_[static_cast<size_t>(ch)], invstd = invstd_[static_cast<size_t>(ch)];
      double sg = 0, sgx = 0;
      channel_sums(relu_, x + o, y + o, dy + o, M, mean, sg, sgx);
      const double sgxhat = sgx * invstd;
      dgamma[ch] = static_cast<float>(sgxhat);
      dbeta[ch] = static_cast<float>(sg);
      if (!dx) continue;
      const float k = gamma[ch] * invstd;
      const float a = train ? static_cast<float>(sg / static_cast<double>(M)) : 0.0f;
      const float b = train ? static_cast<float>(sgxhat / static_cast<double>(M)) * invstd : 0.0f;
      channel_dx(relu_, add, x + o, y + o, dy + o, M, mean, k, a, b, dx + o);
    }
  }

 private:
  // Sync-BN statistics: each rank's count, mean and sum of squared
  // deviations per channel (its own shifted sums), gathered and combined in
  // rank order (Chan et al.'s pairwise update), so that every rank gets the
  // same bits; mean_ and invstd_ then hold the global batch's, the running
  // statistics are updated with them.
  void sync_statistics(const Ctx& c, const float* x, int64_t M) {
    std::vector<double> mine(static_cast<size_t>(2 * C_ + 1)), all;  // [count, (mean, m2) per channel]
    mine[0] = static_cast<double>(M);
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      const float* xc = x + ch * M;
      double s1 = 0, s2 = 0;
      const float k = M ? xc[0] : 0.0f;
      if (M) shifted_sums(xc, M, k, s1, s2);
      mine[static_cast<size_t>(1 + 2 * ch)] = M ? k + s1 / static_cast<double>(M) : 0.0;
      mine[static_cast<size_t>(2 + 2 * ch)] = M ? std::max(0.0, s2 - s1 * s1 / static_cast<double>(M)) : 0.0;
    }
    const int K = c.comm->size();
    const size_t per = mine.size();
    all.resize(per * static_cast<size_t>(K));
    c.comm->gather(mine.data(), static_cast<int64_t>(per), all.data());
    double total = 0;
    for (int r = 0; r < K; ++r) total += all[static_cast<size_t>(r) * per];
    count_ = total;
    float* rmean = mnode_->param("mean").data();
    float* rvar = mnode_->param("var").data();
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      double n = 0, mean = 0, m2 = 0;
      for (int r = 0; r < K; ++r) {
        const double* a = all.data() + static_cast<size_t>(r) * per;
        const double nr = a[0];
        if (nr == 0) continue;
        const double delta = a[1 + 2 * ch] - mean, nn = n + nr;
        mean += delta * nr / nn;
        m2 += a[2 + 2 * ch] + delta * delta * n * nr / nn;
        n = nn;
      }
      const double var = n > 0 ? m2 / n : 0.0;
      mean_[static_cast<size_t>(ch)] = static_cast<float>(mean);
      invstd_[static_cast<size_t>(ch)] = static_cast<float>(1.0 / std::sqrt(var + eps_));
      const double unbiased = n > 1 ? m2 / (n - 1) : var;
      rmean[ch] = static_cast<float>((1.0 - kMomentum) * rmean[ch] + kMomentum * mean);
      rvar[ch] = static_cast<float>((1.0 - kMomentum) * rvar[ch] + kMomentum * unbiased);
    }
  }

  void backward_synced(const Ctx& c) {
    const int64_t M = out->plane(c.n);
    const float* x = in[0]->act.data();
    const float* y = out->act.data();
    const float* dy = out->grad.data();
    const float* gamma = node->param("gamma").data();
    float* dgamma = gamma_->grad.data();
    float* dbeta = beta_->grad.data();
    Value* xin = in[0];
    float* dx = xin->grad.empty() ? nullptr : xin->grad.data();
    const bool add = in_add[0];
    std::vector<double> sums(static_cast<size_t>(2 * C_));  // [sg, sgx] per channel: this rank's, then all ranks'
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      const int64_t o = ch * M;
      double sg = 0, sgx = 0;
      channel_sums(relu_, x + o, y + o, dy + o, M, mean_[static_cast<size_t>(ch)], sg, sgx);
      sums[static_cast<size_t>(2 * ch)] = sg;
      sums[static_cast<size_t>(2 * ch + 1)] = sgx;
      dgamma[ch] = static_cast<float>(sgx * invstd_[static_cast<size_t>(ch)]);
      dbeta[ch] = static_cast<float>(sg);
    }
    if (!dx) return;
    c.comm->sum_ordered(sums.data(), static_cast<int64_t>(sums.size()));
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C_; ++ch) {
      const int64_t o = ch * M;
      const float mean = mean_[static_cast<size_t>(ch)], invstd = invstd_[static_cast<size_t>(ch)];
      const double sg = sums[static_cast<size_t>(2 * ch)], sgxhat = sums[static_cast<size_t>(2 * ch + 1)] * invstd;
      const float k = gamma[ch] * invstd;
      const float a = static_cast<float>(sg / count_);
      const float b = static_cast<float>(sgxhat / count_) * invstd;
      channel_dx(relu_, add, x + o, y + o, dy + o, M, mean, k, a, b, dx + o);
    }
  }

  bool relu_ = false;
  bool synced_ = false;  // the last forward took its statistics over the ranks
  double count_ = 0;     // positions the statistics cover (M, or all ranks' when synced)
  Node* mnode_ = nullptr;
  int64_t C_ = 0;
  double eps_ = 1e-5;
  Param* gamma_ = nullptr;
  Param* beta_ = nullptr;
  Mode mode_ = Mode::Train;
  std::vector<float> mean_, invstd_;  // [C] of the last forward
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm(const LayerArgs& a) { return std::make_unique<BatchNormLayer>(a, false); }
std::unique_ptr<Layer> make_batchnorm_relu(const LayerArgs& a) { return std::make_unique<BatchNormLayer>(a, true); }

}  // namespace bsp::train
