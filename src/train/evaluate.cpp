#include "train/evaluate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>

#include "core/finite.hpp"
#include "core/shapes.hpp"
#include "data/prefetch.hpp"
#include "kernels/runner.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"

namespace bsp::train {

namespace {

// The trainer's network in eval mode, on a private copy of the model.
class NetPredictor : public Predictor {
 public:
  NetPredictor(const Model& m, int64_t max_batch) : model_(clone_graph(m)) {
    // The network holds every layer's output (and a few buffers of the
    // same size): batches are capped so that the outputs of one stay within
    // kEvalBudget, whatever --batch asks (results do not depend on the
    // batch). ResNet-50 at 224x224 holds about 110 MB an image.
    constexpr double kEvalBudget = 1024.0 * (1 << 20);
    double per_image = 0;
    for (const Shape& sh : infer_shapes(m)) {
      double e = sizeof(float);
      for (int64_t d : sh) e *= static_cast<double>(d);
      per_image += e;
    }
    max_batch = std::max<int64_t>(
        1, std::min<int64_t>(max_batch, static_cast<int64_t>(kEvalBudget / std::max(1.0, per_image))));
    NetOptions o;
    o.max_batch = max_batch;
    o.training = false;
    net_ = std::make_unique<Net>(model_, o);
    name_ = std::string("trainer-net (") + net_->kernels().name + ")";
    max_batch_ = max_batch;
  }
  const char* name() const override { return name_.c_str(); }
  int64_t max_batch() const override { return max_batch_; }
  int64_t classes() const override { return net_->classes(); }
  const char* nonfinite_node() const override { return bad_; }
  void run(const float* x, int64_t n, float* logits) override {
    Value& in = net_->input();
    const int64_t C = in.C, hw = in.H * in.W;
    float* cm = in.act.data();
    // [n, H, W, C] -> [C, n, H, W]
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t c = 0; c < C; ++c) cm[(c * n + j) * hw + p] = x[(j * hw + p) * C + c];
    net_->forward(n, Mode::Eval, /*check_finite=*/true);
    const Node* bad = net_->first_nonfinite_output();
    bad_ = bad ? bad->name.c_str() : nullptr;
    const Value& out = net_->output();
    const int64_t K = out.C;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < K; ++k) logits[j * K + k] = out.act[static_cast<size_t>(k * n + j)];
  }

 private:
  Model model_;
  std::unique_ptr<Net> net_;
  std::string name_;
  int64_t max_batch_ = 0;
  const char* bad_ = nullptr;
};

// The fast CPU kernels of src/kernels (compact forms when the model has
// them, int8 included); the logits before a final softmax.
class RunnerPredictor : public Predictor {
 public:
  RunnerPredictor(const Model& m, int64_t max_batch) : m_(m), runner_(m) {
    max_batch_ = max_batch;
    const std::vector<Shape> shapes = infer_shapes(m);
    classes_ = shapes.back().at(0);
    name_ = std::string("kernels runner (") + (runner_.is_int8() ? "int8" : "fp32") + ")";
  }
  const char* name() const override { return name_.c_str(); }
  int64_t max_batch() const override { return max_batch_; }
  int64_t classes() const override { return classes_; }
  void run(const float* x, int64_t n, float* logits) override {
    const Shape in = m_.input_shape();
    Tensor xt({n, in[0], in[1], in[2]});
    std::copy(x, x + xt.size(), xt.data());
    bad_ = nullptr;
    auto observe = [&](size_t node, const Tensor& t) {
      if (!bad_ && any_nonfinite(t.data(), static_cast<int64_t>(t.size()))) bad_ = m_.nodes[node].name.c_str();
    };
    const Tensor y = runner_.is_int8() ? runner_.logits(xt) : runner_.logits(xt, observe);
    std::copy(y.begin(), y.end(), logits);
  }
  const char* nonfinite_node() const override { return bad_; }

 private:
  const Model& m_;
  kernels::Runner runner_;
  int64_t max_batch_ = 0, classes_ = 0;
  std::string name_;
  const char* bad_ = nullptr;
};

}  // namespace

std::unique_ptr<Predictor> make_predictor(const Model& m, int64_t max_batch) {
  // A compacted model runs its compact kernels; a plain one the trainer's
  // network (which skips zero 8x8 blocks of masked layers).
  // BSP_EVAL_ENGINE=net|runner overrides the choice (comparisons).
  const char* e = std::getenv("BSP_EVAL_ENGINE");
  const std::string engine = e ? e : (m.compact ? "runner" : "net");
  if (engine == "runner") return std::make_unique<RunnerPredictor>(m, max_batch);
  return std::make_unique<NetPredictor>(m, max_batch);
}

EvalResult evaluate(Predictor& p, const ImageSet& s, const Normalization& norm, Tensor* all) {
  return evaluate(p, ImageSetSource(s, norm, Augmentation{}), all);
}

EvalResult evaluate(Predictor& p, const BatchSource& s, Tensor* all) {
  const int64_t B = p.max_batch(), K = p.classes(), N = s.size();
  if (all) {
    *all = Tensor({N, K});
    std::fill(all->begin(), all->end(), std::numeric_limits<float>::quiet_NaN());
  }
  std::vector<float> logits(static_cast<size_t>(B * K)), lt(static_cast<size_t>(B * K));
  std::vector<int64_t> idx(static_cast<size_t>(N));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t batches = (N + B - 1) / B;
  BatchQueue queue(s, [&](int64_t k) {
    BatchRequest r;
    r.idx = idx.data() + k * B;
    r.n = std::min(B, N - k * B);
    return r;
  }, batches);
  EvalResult r;
  double loss = 0;
  int64_t correct = 0;
  for (int64_t k = 0; k < batches; ++k) {
    const Batch& b = queue.next();
    const int64_t n = b.n;
    if (n == 0) continue;
    const int64_t first = b.index[0], last = b.index[static_cast<size_t>(n - 1)];
    const auto t0 = std::chrono::steady_clock::now();
    p.run(b.x.data(), n, logits.data());
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (const char* node = p.nonfinite_node())
      fail("the forward pass is not finite: node '{}' outputs nan or infinite values on images {} to {} (the model "
           "overflows float32)",
           node, first, last);
    if (const int64_t e = first_nonfinite(logits.data(), n * K); e < n * K)
      fail("the forward pass is not finite: the logits of image {} are {} (the model overflows float32)",
           b.index[static_cast<size_t>(e / K)], nonfinite_word(logits[static_cast<size_t>(e)]));
    if (all)
      for (int64_t j = 0; j < n; ++j)
        std::copy(logits.begin() + j * K, logits.begin() + (j + 1) * K, all->data() + b.index[static_cast<size_t>(j)] * K);
    // [n, K] -> [K, n] for the loss
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < K; ++c) lt[static_cast<size_t>(c * n + j)] = logits[static_cast<size_t>(j * K + c)];
    LossSum ls = softmax_xent(lt.data(), K, n, b.labels.data(), nullptr);
    loss += ls.loss;
    correct += ls.correct;
    r.n += n;
  }
  if (N > 0 && r.n == 0) fail("none of the {} images can be read", N);
  r.loss = r.n ? loss / static_cast<double>(r.n) : 0;
  r.accuracy = r.n ? static_cast<double>(correct) / static_cast<double>(r.n) : 0;
  return r;
}

}  // namespace bsp::train
