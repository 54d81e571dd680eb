// The training loop of bsp finetune: shuffled, augmented batches through the
// Net, softmax cross-entropy, SGD on the schedule, masks held (or raised
// gradually, or BDWP), a test evaluation and a checkpoint after every epoch.
// Everything that touches files or the terminal is a hook, so the CLI owns
// the output and the library stays testable.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"
#include "data/source.hpp"
#include "train/comm.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"
#include "train/optimizer.hpp"
#include "train/sparsity_schedule.hpp"

namespace bsp::train {

struct TrainConfig {
  int64_t epochs = 1;
  int64_t batch = 128;
  SgdConfig sgd;  // total_steps is filled in by the Trainer
  uint64_t seed = 0;
  Augmentation aug;
  bool test_each_epoch = true;
  std::optional<GradualConfig> gradual;  // raise sparsity during training
  bool bdwp = false;                     // BDWP + SR-STE on the nm:N:M layers
  BdwpConfig bdwp_cfg;                   // its sharing and mask-update interval
  // Data-parallel training: the ranks sharing every batch (each trains on
  // its share, gradients and batchnorm statistics are summed over them);
  // null: this process alone.
  Comm* comm = nullptr;
  // Data-parallel batchnorm: training statistics over the global batch
  // (sync-BN), else over each rank's share (no communication, but the model
  // then differs from one process's).
  bool sync_bn = true;
  // Gradient accumulation: each rank's share of a batch goes through the
  // network in `accumulate` steps, their gradients summed before the
  // optimizer step (batchnorm's statistics are then over each part).
  int64_t accumulate = 1;
  // Memory: before training, the network's needs are probed
  // (probe_train_memory) and a batch that needs more than this many bytes
  // is refused, naming one that fits. 0: the memory available now; < 0:
  // no check.
  double memory_budget = 0;
};

// Where training stands: what a checkpoint holds besides the model and the
// optimizer's momentum. Steps are optimizer steps (batches).
struct TrainState {
  int64_t epoch = 0;  // completed epochs
  int64_t step = 0;   // completed steps of the epoch in progress
  // Sums over the completed steps of the epoch in progress.
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  double seconds = 0;
  bool complete = false;
};

struct EpochRecord {
  int64_t epoch = 0, epochs = 0;  // 1-based
  double lr = 0;                  // of the epoch's last step
  double loss = 0, train_acc = 0;
  bool has_test = false;
  double test_loss = 0, test_acc = 0;
  double seconds = 0;  // training time of the epoch (no test evaluation, no checkpoint)
  double images_per_s = 0;
  double data_wait_s = -1;  // of `seconds`, the time the trainer waited for prefetched batches (-1: not prefetched)
  double density = -1;  // gradual pruning: kept fraction of the pruned layers' weights (else -1)
};

struct Progress {
  int64_t epoch = 0, epochs = 0;  // 1-based epoch
  int64_t step = 0, steps = 0;    // steps done in this epoch, of
  double loss = 0;                // mean over the epoch so far
  double images_per_s = 0;
  double eta_s = 0;  // to the end of training
};

struct TrainHooks {
  std::function<void(const Progress&)> progress;         // after every step
  std::function<void(const EpochRecord&)> epoch_done;    // after every epoch
  std::function<void(const TrainState&)> checkpoint;     // save now (end of epoch, or interrupted)
  std::function<int()> stop_requested;                   // a signal number, 0 to go on
};

// Training was stopped by a signal after a checkpoint was saved.
struct Interrupted {
  int signal;
};

// Throws "training diverged: ..." when a batchnorm's running mean or
// variance is not finite, naming (1-based) epoch and step. The trainer
// checks after every step: the loss, every parameter (sgd_step) and these.
void check_statistics(const Model& m, int64_t epoch, int64_t step);

class Trainer {
 public:
  // `m` is trained in place. `test` may be null. The sources must outlive
  // the trainer; their batches are prefetched when they have workers.
  Trainer(Model& m, const BatchSource& train, const BatchSource* test, const TrainConfig& cfg);
  // Images in memory, normalised with `norm` and augmented as cfg.aug says.
  Trainer(Model& m, const ImageSet& train, const ImageSet* test, const Normalization& norm, const TrainConfig& cfg);
  ~Trainer();

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t batch_images() const { return batch_n_; }  // the global batch (all ranks)
  // Bytes the training was estimated to need (0 when not checked).
  double memory_needed() const { return memory_needed_; }
  TrainState& state() { return state_; }
  std::vector<Param>& params() { return net_->params(); }
  Net& net() { return *net_; }
  const TrainConfig& config() const { return cfg_; }

  // After restoring weights / momentum from a checkpoint.
  void weights_restored();

  // BDWP: for a file write, the model's weights masked (and its nm masks set
  // to the current forward masks); the dense weights are returned for the
  // checkpoint's /train/dense and restored by end_export(). Without BDWP:
  // nothing to do, an empty map.
  std::map<std::string, Tensor> begin_export();
  void end_export(std::map<std::string, Tensor>& dense);
  // BDWP: replaces the weights with a checkpoint's dense ones.
  void restore_dense(std::map<std::string, Tensor>& dense);

  // Trains from state() to the end. Throws bsp::Error when the loss stops
  // being finite, Interrupted when stop_requested() fired (after checkpoint()).
  void run(const TrainHooks& hooks);

  // Test-set loss and accuracy in eval mode (batchnorm running statistics).
  // Throws bsp::Error naming the first node whose output is not finite.
  void test(double& loss, double& acc);

 private:
  void init();
  void refresh_rules();
  // Refuses a batch whose network would not fit cfg_.memory_budget.
  void check_memory(int64_t share_max, int64_t micro);
  // One rank's share of a batch (its images [0, n) of b) through the network
  // in cfg_.accumulate parts: the loss and hits of the whole batch (summed
  // over the parts and the ranks), this rank's gradients summed over its
  // parts. Stops at the first part whose loss is not finite.
  LossSum forward_backward(const Batch& b, int64_t n);
  // Data-parallel: every gradient summed over the ranks.
  void sum_gradients();
  // The signal that stops every rank (the first rank's that saw one), 0 to go on.
  int agreed_signal(int mine);
  // Data-parallel: fails unless every rank holds the same weights.
  void check_ranks_agree(int64_t epoch);
  // Data-parallel with local batchnorm statistics: the running statistics,
  // which each rank updated from its own share, averaged over the ranks
  // (after every epoch, before the test pass and the checkpoint).
  void average_running_statistics();

  Model& model_;
  std::unique_ptr<BatchSource> own_train_, own_test_;  // the ImageSet constructor's
  const BatchSource* train_ = nullptr;
  const BatchSource* test_ = nullptr;
  TrainConfig cfg_;
  std::unique_ptr<Net> net_;
  Comm* comm_ = nullptr;  // never null: solo_comm() in one process
  int64_t batch_n_ = 0, steps_per_epoch_ = 0;  // batch_n_: the global batch
  TrainState state_;
  std::vector<Array<uint8_t>> held_;  // per param: element mask of a masked weight (else empty)
  std::vector<ParamRule> rules_;
  std::vector<int64_t> labels_;
  std::vector<Tensor> grad_sum_;  // per param, cfg_.accumulate > 1: the parts' gradients summed
  double memory_needed_ = 0;
  std::unique_ptr<GradualPruner> gradual_;
  std::unique_ptr<Bdwp> bdwp_;
};

}  // namespace bsp::train
