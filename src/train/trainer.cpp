#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "core/finite.hpp"
#include "core/hasher.hpp"
#include "core/rng.hpp"
#include "data/prefetch.hpp"
#include "sparsity/mask.hpp"
#include "train/loss.hpp"
#include "train/memory.hpp"

namespace bsp::train {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Augmentation draws of one batch: a function of (seed, epoch, step) only.
uint64_t batch_key(uint64_t seed, int64_t epoch, int64_t step) {
  return mix64(mix64(seed ^ 0x417567ULL) ^ (static_cast<uint64_t>(epoch) << 32 | static_cast<uint64_t>(step)));
}
}  // namespace

void check_statistics(const Model& m, int64_t epoch, int64_t step) {
  for (const Node& n : m.nodes) {
    if (n.op != Op::BatchNorm) continue;
    for (const char* key : {"mean", "var"}) {
      if (!n.has_param(key)) continue;
      const Tensor& t = n.param(key);
      for (size_t c = 0; c < t.size(); ++c)
        if (!std::isfinite(t[c]))
          fail("training diverged: the running {} of batchnorm '{}' is {} in channel {} at epoch {} step {} (try a "
               "lower --lr)",
               key[0] == 'm' ? "mean" : "variance", n.name, std::isnan(t[c]) ? "nan" : "infinite", c, epoch, step);
    }
  }
}

Trainer::Trainer(Model& m, const BatchSource& train, const BatchSource* test, const TrainConfig& cfg)
    : model_(m), train_(&train), test_(test), cfg_(cfg) {
  init();
}

Trainer::Trainer(Model& m, const ImageSet& train, const ImageSet* test, const Normalization& norm,
                 const TrainConfig& cfg)
    : model_(m), cfg_(cfg) {
  own_train_ = std::make_unique<ImageSetSource>(train, norm, cfg.aug);
  if (test) own_test_ = std::make_unique<ImageSetSource>(*test, norm, Augmentation{});
  train_ = own_train_.get();
  test_ = own_test_.get();
  init();
}

void Trainer::init() {
  if (cfg_.epochs < 1) fail_usage("--epochs must be at least 1");
  if (cfg_.batch < 1) fail_usage("--batch must be at least 1");
  // The last incomplete batch of an epoch is dropped (as the PyTorch recipe
  // does), unless the data holds less than one batch.
  batch_n_ = std::min(cfg_.batch, train_->size());
  steps_per_epoch_ = train_->size() / batch_n_;
  comm_ = cfg_.comm ? cfg_.comm : &solo_comm();
  const int ranks = comm_->size();
  if (batch_n_ < ranks)
    fail_usage("a batch of {} images cannot be shared by {} ranks: give --batch {} or more", batch_n_, ranks, ranks);
  cfg_.sgd.total_steps = cfg_.epochs * steps_per_epoch_;
  // Pruned weights are zero before the first step.
  for (Node& n : model_.nodes)
    if (n.mask) apply_mask(n);
  const int64_t share_max = (batch_n_ + ranks - 1) / ranks;  // the largest share (share_of)
  const int64_t share_min = batch_n_ / ranks;
  if (cfg_.accumulate < 1) fail_usage("--accumulate must be at least 1");
  if (cfg_.accumulate > share_min)
    fail_usage("--accumulate {} needs at least {} images per rank in a batch, the batch of {} gives {}", cfg_.accumulate,
               cfg_.accumulate, batch_n_, share_min);
  NetOptions o;
  o.max_batch = (share_max + cfg_.accumulate - 1) / cfg_.accumulate;  // the largest part
  o.training = true;
  o.comm = ranks > 1 && cfg_.sync_bn ? comm_ : nullptr;
  check_memory(share_max, o.max_batch);
  net_ = std::make_unique<Net>(model_, o);
  labels_.resize(static_cast<size_t>(o.max_batch));
  if (cfg_.bdwp) bdwp_ = std::make_unique<Bdwp>(model_, cfg_.bdwp_cfg);
  if (cfg_.gradual) gradual_ = std::make_unique<GradualPruner>(model_, *cfg_.gradual, cfg_.sgd.total_steps);
  refresh_rules();
}

Trainer::~Trainer() = default;

void Trainer::check_memory(int64_t share_max, int64_t micro) {
  if (cfg_.memory_budget < 0) return;
  NetOptions o;
  o.training = true;
  TrainMemory t = probe_train_memory(model_, o);
  // Besides the network: the summed gradients when accumulating, and the
  // input batch with the prefetch queue's copies of it.
  double params = 0;
  for (const Node& n : model_.nodes) params += static_cast<double>(trainable_params(n)) * sizeof(float);
  if (cfg_.accumulate > 1) t.fixed_bytes += params;
  const double image = static_cast<double>(train_->h() * train_->w() * train_->c()) * sizeof(float);
  const double queue = static_cast<double>(train_->workers() + 3) * image;
  memory_needed_ = t.at(micro) + queue * static_cast<double>(share_max);
  const double budget = cfg_.memory_budget > 0 ? cfg_.memory_budget : available_memory_bytes();
  if (budget <= 0 || memory_needed_ <= budget) return;
  const int ranks = comm_->size();
  const double per_image = t.per_image_bytes + queue * static_cast<double>(cfg_.accumulate);  // per image of a part
  // The largest batch that fits with this accumulation, and the fewest
  // parts that fit this batch.
  const double fit = std::floor((budget - t.fixed_bytes) / per_image);
  const int64_t batch_fits = static_cast<int64_t>(std::max(0.0, fit)) * cfg_.accumulate * ranks;
  // What K parts of this batch need (the summed gradients once K > 1).
  auto need_in = [&](int64_t k) {
    return t.fixed_bytes + (cfg_.accumulate > 1 || k == 1 ? 0.0 : params) +
           t.per_image_bytes * static_cast<double>((share_max + k - 1) / k) + queue * static_cast<double>(share_max);
  };
  int64_t parts = cfg_.accumulate;
  while (parts < share_max && need_in(parts) > budget) ++parts;
  const bool parts_fit = need_in(parts) <= budget;
  std::string hint;
  if (batch_fits >= 1) hint = fmt::format(": give --batch {}", std::min(batch_fits, batch_n_ - 1));
  if (parts_fit && parts > cfg_.accumulate)
    hint += fmt::format("{} --accumulate {} (the batch of {} in {} parts)", hint.empty() ? ": give" : ", or", parts,
                        batch_n_, parts);
  if (hint.empty()) hint = ": not even one image fits";
  fail("a batch of {} images{} needs about {} ({} an image), more than the {} {}{}", batch_n_,
       ranks > 1 ? fmt::format(" over {} ranks", ranks) : std::string(), memory_str(memory_needed_),
       memory_str(t.per_image_bytes), memory_str(budget),
       cfg_.memory_budget > 0 ? "that --max-memory allows" : "available", hint);
}

LossSum Trainer::forward_backward(const Batch& b, int64_t n) {
  const int64_t K = net_->classes(), parts = cfg_.accumulate;
  const int64_t image = train_->h() * train_->w() * train_->c();
  std::vector<Param>& ps = net_->params();
  if (parts > 1 && grad_sum_.size() != ps.size()) {
    grad_sum_.clear();
    for (const Param& p : ps) grad_sum_.emplace_back(p.grad.shape());
  }
  LossSum total;
  for (int64_t k = 0; k < parts; ++k) {
    const Share part = share_of(n, static_cast<int>(k), static_cast<int>(parts));
    std::copy(b.labels.begin() + part.first, b.labels.begin() + part.first + part.count, labels_.begin());
    to_channel_major(b.x.data() + part.first * image, part.count, train_->h(), train_->w(), train_->c(),
                     net_->input().act.data());
    net_->forward(part.count, Mode::Train);
    Value& out = net_->output();
    // The gradient of the mean loss over the global batch: the parts' sum
    // is the whole batch's gradient.
    LossSum ls = softmax_xent(out.act.data(), K, part.count, labels_.data(), out.grad.data(), batch_n_);
    if (comm_->size() > 1) {  // the part's loss and hits, the same on every rank
      double v[2] = {ls.loss, static_cast<double>(ls.correct)};
      comm_->sum_ordered(v, 2);
      ls.loss = v[0];
      ls.correct = static_cast<int64_t>(v[1]);
    }
    total.loss += ls.loss;
    total.correct += ls.correct;
    // Every rank sees the same sum: all stop here together (the caller
    // fails), before a backward pass that would communicate.
    if (!std::isfinite(ls.loss)) return total;
    net_->backward();
    if (parts == 1) break;
    for (size_t i = 0; i < ps.size(); ++i) {
      float* acc = grad_sum_[i].data();
      const float* g = ps[i].grad.data();
      const size_t len = ps[i].grad.size();
      if (k == 0)
        std::copy(g, g + len, acc);
      else
        for (size_t e = 0; e < len; ++e) acc[e] += g[e];
    }
  }
  if (parts > 1)
    for (size_t i = 0; i < ps.size(); ++i) std::swap(ps[i].grad, grad_sum_[i]);
  return total;
}

void Trainer::refresh_rules() {
  std::vector<Param>& ps = net_->params();
  held_.clear();
  held_.resize(ps.size());
  rules_.assign(ps.size(), ParamRule{});
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].key != "weight" || !ps[i].node->mask) continue;
    held_[i] = element_mask(*ps[i].node);
    rules_[i].hold = held_[i].data();
  }
  if (bdwp_) bdwp_->attach(*net_, rules_, ps);
}

std::map<std::string, Tensor> Trainer::begin_export() {
  if (!bdwp_) return {};
  return bdwp_->export_masked();
}

void Trainer::end_export(std::map<std::string, Tensor>& dense) {
  if (bdwp_) bdwp_->restore_dense(dense);
}

void Trainer::restore_dense(std::map<std::string, Tensor>& dense) {
  if (!bdwp_) {
    if (!dense.empty()) fail("the checkpoint holds BDWP weights but this run does not use --bdwp");
    return;
  }
  bdwp_->restore_dense(dense);
  bdwp_->update_masks();
  net_->weights_changed();
}

void Trainer::weights_restored() {
  // BDWP layers keep dense weights; their stored masks are informative only.
  for (Node& n : model_.nodes)
    if (n.mask && !(bdwp_ && bdwp_->contains(&n))) apply_mask(n);
  refresh_rules();
  net_->masks_changed();
}

void Trainer::sum_gradients() {
  if (comm_->size() == 1) return;
  for (Param& p : net_->params()) comm_->sum(p.grad.data(), static_cast<int64_t>(p.grad.size()));
}

void Trainer::average_running_statistics() {
  const int ranks = comm_->size();
  if (ranks == 1 || cfg_.sync_bn) return;
  for (Node& n : model_.nodes) {
    if (n.op != Op::BatchNorm) continue;
    for (const char* key : {"mean", "var"}) {
      Tensor& t = n.params.at(key);
      comm_->sum(t.data(), static_cast<int64_t>(t.size()));
      for (size_t i = 0; i < t.size(); ++i) t[i] /= static_cast<float>(ranks);
    }
  }
}

void Trainer::check_ranks_agree(int64_t epoch) {
  const int ranks = comm_->size();
  if (ranks == 1) return;
  // Every rank applies the same summed gradients to the same weights, so
  // their models must be bit-identical; a difference would mean the MPI
  // library's sums differ between ranks, and the ranks would drift apart.
  Hasher h;
  for (const Param& p : net_->params()) h.add_bytes(p.value->data(), p.value->size() * sizeof(float));
  const uint64_t v = h.value();
  const double mine[2] = {static_cast<double>(v >> 32), static_cast<double>(v & 0xffffffffu)};  // exact in a double
  std::vector<double> all(static_cast<size_t>(2 * ranks));
  comm_->gather(mine, 2, all.data());
  for (int r = 1; r < ranks; ++r)
    if (all[static_cast<size_t>(2 * r)] != all[0] || all[static_cast<size_t>(2 * r + 1)] != all[1])
      fail("the ranks' models differ after epoch {} (rank {} against rank 0): the MPI library's sums are not the "
           "same on every rank",
           epoch, r);
}

int Trainer::agreed_signal(int mine) {
  const int ranks = comm_->size();
  if (ranks == 1) return mine;
  std::vector<double> all(static_cast<size_t>(ranks));
  const double v = mine;
  comm_->gather(&v, 1, all.data());
  for (double a : all)
    if (a != 0) return static_cast<int>(a);
  return 0;
}

void Trainer::test(double& loss, double& acc) {
  // Data-parallel: each rank evaluates its share of the test images; the
  // sums are added over the ranks.
  const BatchSource& s = *test_;
  const Share mine = share_of(s.size(), comm_->rank(), comm_->size());
  const int64_t B = net_->max_batch(), K = net_->classes();
  const int64_t batches = (mine.count + B - 1) / B;
  std::vector<int64_t> idx(static_cast<size_t>(mine.count));
  for (int64_t j = 0; j < mine.count; ++j) idx[static_cast<size_t>(j)] = mine.first + j;
  BatchQueue queue(s, [&](int64_t k) {
    BatchRequest r;
    r.idx = idx.data() + k * B;
    r.n = std::min(B, mine.count - k * B);
    return r;
  }, batches);
  // loss, correct, images evaluated (unreadable ones are left out), a node with non-finite outputs (1)
  double sums[4] = {0, 0, 0, 0};
  std::string bad_message;
  for (int64_t k = 0; k < batches; ++k) {
    const Batch& b = queue.next();
    const int64_t n = b.n;
    if (n == 0) continue;
    to_channel_major(b, s.h(), s.w(), s.c(), net_->input().act.data());
    net_->forward(n, Mode::Eval, /*check_finite=*/true);
    // A relu turns NaN into 0 (maxps): the loss alone can look fine.
    if (const Node* bad = net_->first_nonfinite_output()) {
      bad_message = fmt::format("node '{}' outputs nan or infinite values on test images {} to {}", bad->name,
                                b.index[0], b.index[static_cast<size_t>(n - 1)]);
      sums[3] = 1;
      break;
    }
    LossSum ls = softmax_xent(net_->output().act.data(), K, n, b.labels.data(), nullptr);
    sums[0] += ls.loss;
    sums[1] += static_cast<double>(ls.correct);
    sums[2] += static_cast<double>(n);
  }
  comm_->sum_ordered(sums, 4);  // every rank learns of a failure on any
  if (sums[3] != 0) fail("{}", bad_message.empty() ? "another rank's test images give nan or infinite outputs" : bad_message);
  if (sums[2] == 0) fail("none of the {} test images can be read", s.size());
  loss = sums[0] / sums[2];
  acc = sums[1] / sums[2];
}

void Trainer::run(const TrainHooks& hooks) {
  const int64_t spe = steps_per_epoch_, epochs = cfg_.epochs;
  const int64_t total_steps = epochs * spe;
  double lr = 0;
  for (int64_t epoch = state_.epoch; epoch < epochs; ++epoch) {
    const std::vector<int64_t> order = shuffled_order(train_->size(), cfg_.seed, epoch);
    const double seconds_before = state_.seconds;
    const int64_t first_step = state_.step;
    auto t_epoch = Clock::now();
    // Data-parallel: this rank's share of each global batch (all of it in
    // one process), with the augmentation draws of its positions in it.
    const Share share = share_of(batch_n_, comm_->rank(), comm_->size());
    BatchQueue queue(*train_, [&](int64_t k) {
      BatchRequest r;
      r.idx = order.data() + (first_step + k) * batch_n_ + share.first;
      r.n = share.count;
      r.train = true;
      r.key = batch_key(cfg_.seed, epoch, first_step + k);
      r.j0 = share.first;
      return r;
    }, spe - first_step);
    for (int64_t step = state_.step; step < spe; ++step) {
      const Batch& b = queue.next();
      const int64_t n = b.n;  // share.count: training batches keep their size
      if (bdwp_) bdwp_->before_step(epoch * spe + step);
      const LossSum ls = forward_backward(b, n);  // summed over the ranks
      if (!std::isfinite(ls.loss))
        fail("training diverged: the loss is {} at epoch {} step {} (try a lower --lr)",
             std::isnan(ls.loss) ? "nan" : "infinite", epoch + 1, step + 1);
      sum_gradients();
      if (bdwp_) bdwp_->after_backward(net_->params());
      const int64_t global = epoch * spe + step;
      const StepHyper h = hyper_at(cfg_.sgd, global);
      lr = h.lr;
      const size_t bad = sgd_step(net_->params(), rules_, cfg_.sgd, h);
      if (bad < net_->params().size()) {
        const Param& p = net_->params()[bad];
        const int64_t e = first_nonfinite(p.value->data(), static_cast<int64_t>(p.value->size()));
        fail("training diverged: parameter '{}' of node '{}' is {} at epoch {} step {} (try a lower --lr)", p.key,
             p.node->name, nonfinite_word((*p.value)[static_cast<size_t>(e)]), epoch + 1, step + 1);
      }
      check_statistics(model_, epoch + 1, step + 1);
      if (bdwp_) bdwp_->after_step(global + 1);  // bumps the masks' version: layers rebuild their K lists
      if (gradual_ && gradual_->after_step(global + 1)) {
        refresh_rules();
        net_->masks_changed();  // new block lists (and a repack)
      } else {
        net_->weights_changed();
      }

      state_.step = step + 1;
      state_.loss_sum += ls.loss;
      state_.correct += ls.correct;
      state_.seen += batch_n_;
      const double elapsed = seconds_before + since(t_epoch);
      state_.seconds = elapsed;
      if (hooks.progress) {
        Progress p;
        p.epoch = epoch + 1;
        p.epochs = epochs;
        p.step = step + 1;
        p.steps = spe;
        p.loss = state_.loss_sum / static_cast<double>(state_.seen);
        const double run_s = elapsed - seconds_before;
        const int64_t done_here = step + 1 - first_step;
        p.images_per_s = run_s > 0 ? static_cast<double>(done_here * batch_n_) / run_s : 0;
        const double per_step = done_here > 0 ? run_s / static_cast<double>(done_here) : 0;
        p.eta_s = per_step * static_cast<double>(total_steps - (global + 1));
        hooks.progress(p);
      }
      if (hooks.stop_requested) {
        if (int sig = agreed_signal(hooks.stop_requested())) {
          if (hooks.checkpoint) hooks.checkpoint(state_);
          throw Interrupted{sig};
        }
      }
    }
    EpochRecord r;
    r.epoch = epoch + 1;
    r.epochs = epochs;
    r.lr = lr;
    r.loss = state_.seen ? state_.loss_sum / static_cast<double>(state_.seen) : 0;
    r.train_acc = state_.seen ? static_cast<double>(state_.correct) / static_cast<double>(state_.seen) : 0;
    r.seconds = state_.seconds;
    r.images_per_s = r.seconds > 0 ? static_cast<double>(state_.seen) / r.seconds : 0;
    r.data_wait_s = train_->workers() > 0 ? queue.waited_s() : -1;
    if (gradual_) r.density = gradual_->density();
    average_running_statistics();
    if (test_ && cfg_.test_each_epoch) {
      r.has_test = true;
      // Eval mode runs on the running statistics, which the training loss
      // never saw: the epoch is not checkpointed when they break the model.
      try {
        test(r.test_loss, r.test_acc);
      } catch (const Error& e) {
        throw Error(fmt::format("training diverged: after epoch {}, {} (try a lower --lr)", epoch + 1, e.what()),
                    e.exit_code());
      }
      if (!std::isfinite(r.test_loss))
        fail("training diverged: the test loss is {} after epoch {} (try a lower --lr)",
             std::isnan(r.test_loss) ? "nan" : "infinite", epoch + 1);
    }
    check_ranks_agree(epoch + 1);
    state_ = TrainState{};
    state_.epoch = epoch + 1;
    state_.complete = state_.epoch == epochs;
    if (hooks.checkpoint) hooks.checkpoint(state_);
    if (hooks.epoch_done) hooks.epoch_done(r);
    if (!state_.complete && hooks.stop_requested) {
      if (int sig = agreed_signal(hooks.stop_requested())) throw Interrupted{sig};
    }
  }
  state_.complete = true;
}

}  // namespace bsp::train
