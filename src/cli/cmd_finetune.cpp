// bsp finetune: train a model on a data set, from scratch or from its
// current weights, holding its sparsity masks (man/bsp-finetune.1).
#include <omp.h>
#include <sys/stat.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "cli/train_report.hpp"
#include "core/safe_file.hpp"
#include "cli/data_source.hpp"
#include "data/dataset.hpp"
#include "modelfile/model_file.hpp"
#include "sparsity/pattern.hpp"
#include "train/checkpoint.hpp"
#include "train/comm.hpp"
#include "train/model_data.hpp"
#include "train/memory.hpp"
#include "train/trainer.hpp"

namespace bsp::cli {

namespace {

struct FinetuneOptions {
  std::string input;
  DataOptions data;  // --data, --limit, --workers, --crop-fraction, --mean, --std
  OutputOptions out;
  std::optional<int64_t> epochs;  // default: 8 from scratch, 3 otherwise
  int64_t batch = 128;
  std::optional<double> lr;  // default: 0.1 from scratch, 0.02 otherwise
  std::string schedule = "onecycle";
  double momentum = 0.9;
  bool no_nesterov = false;
  double weight_decay = 5e-4;
  uint64_t seed = 0;
  int threads = 0;
  bool no_augment = false;
  int64_t crop_pad = 2;
  std::string checkpoint, log;
  bool resume = false, quiet = false;
  // sparsity during training
  bool gradual = false, bdwp = false;
  int64_t bdwp_shared = 1, bdwp_every = 1, bdwp_grad_every = 1;
  std::string bn_stats = "sync";  // data-parallel batchnorm statistics: sync or local
  int64_t accumulate = 1;         // parts per batch (gradient accumulation)
  std::string max_memory;         // "": the memory available; "off"; or a size
  std::string pattern;
  double to = 0;
  int64_t prune_every = 100;
  double prune_end = 0.75;
};

bool file_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

// The settings a checkpoint must share with the command that resumes it.
Json run_config(const FinetuneOptions& o, const train::TrainConfig& c, uint64_t digest) {
  Json j = Json::object();
  j["input_digest"] = fmt::format("{:016x}", digest);
  j["data"] = o.data.spec;
  j["limit"] = o.data.limit;
  j["epochs"] = c.epochs;
  j["batch"] = c.batch;
  j["lr"] = c.sgd.lr;
  j["schedule"] = train::schedule_name(c.sgd.schedule);
  j["momentum"] = c.sgd.momentum;
  j["nesterov"] = c.sgd.nesterov;
  j["weight_decay"] = c.sgd.weight_decay;
  j["seed"] = static_cast<int64_t>(c.seed);
  j["crop_pad"] = c.aug.pad;
  j["flip"] = c.aug.flip;
  if (is_image_folder(o.data.spec)) {  // what shapes an image folder's batches (absent for other data)
    j["augment"] = !o.no_augment;
    j["crop_fraction"] = o.data.crop_fraction;
  }
  j["bdwp"] = c.bdwp;
  if (c.bdwp && (c.bdwp_cfg.shared != 1 || c.bdwp_cfg.every != 1 || c.bdwp_cfg.grad_every != 1)) {
    j["bdwp_shared"] = c.bdwp_cfg.shared;
    j["bdwp_every"] = c.bdwp_cfg.every;
    j["bdwp_grad_every"] = c.bdwp_cfg.grad_every;
  }
  if (!c.sync_bn) j["bn_stats"] = "local";  // absent: sync (and files from before the option)
  if (c.gradual) {
    Json g = Json::object();
    g["pattern"] = c.gradual->pattern.str();
    g["to"] = c.gradual->to;
    g["every"] = c.gradual->every;
    g["end"] = c.gradual->end;
    j["gradual"] = std::move(g);
  }
  return j;
}

// Names the first setting that differs, for the resume error.
std::string first_difference(const Json& want, const Json& got) {
  for (const auto& [k, v] : want.as_object()) {
    const Json* g = got.is_object() ? got.find(k) : nullptr;
    if (!g) return fmt::format("it has no '{}'", k);
    if (g->dump() != v.dump())
      return k == "input_digest" ? std::string("it was started from another model")
                                 : fmt::format("it was made with {} {}, not {}", k, g->dump(), v.dump());
  }
  return "its settings differ";
}

// The command line's own checks, before anything is read; the gradual
// pruning it asks for.
std::optional<train::GradualConfig> check_options(const FinetuneOptions& o, const std::string& ckpath) {
  if (o.resume && ckpath.empty()) fail_usage("--resume needs a checkpoint: give --checkpoint FILE when the output is stdout");
  if (o.batch < 1) fail_usage("--batch must be at least 1");
  if (o.epochs && *o.epochs < 1) fail_usage("--epochs must be at least 1");
  if (o.lr && !(*o.lr > 0)) fail_usage("--lr must be positive");
  if (!(o.momentum >= 0 && o.momentum < 1)) fail_usage("--momentum must be in [0, 1)");
  if (!(o.weight_decay >= 0)) fail_usage("--weight-decay must be non-negative");
  if (o.crop_pad < 0) fail_usage("--crop-pad must be non-negative");
  train::schedule_from_name(o.schedule);
  if (!o.gradual && (!o.pattern.empty() || o.to > 0))
    fail_usage("--pattern and --to go with --gradual (to prune once, use bsp prune)");
  if (o.gradual && (o.pattern.empty() || !(o.to > 0)))
    fail_usage("--gradual needs --pattern P and --to D (the final density)");
  if (o.gradual && o.bdwp) fail_usage("--gradual and --bdwp do not go together");
  if (o.bdwp_shared < 1) fail_usage("--bdwp-shared must be at least 1");
  if (o.bdwp_every < 1) fail_usage("--bdwp-every must be at least 1");
  if (o.bdwp_grad_every < 1) fail_usage("--bdwp-grad-every must be at least 1");
  if (!o.bdwp && (o.bdwp_shared != 1 || o.bdwp_every != 1 || o.bdwp_grad_every != 1))
    fail_usage("--bdwp-shared, --bdwp-every and --bdwp-grad-every go with --bdwp");
  if (o.bn_stats != "sync" && o.bn_stats != "local") fail_usage("--bn-stats must be sync or local, not '{}'", o.bn_stats);
  if (o.accumulate < 1) fail_usage("--accumulate must be at least 1");
  if (!o.max_memory.empty() && o.max_memory != "off") train::parse_memory(o.max_memory, "--max-memory");
  if (!o.gradual) return std::nullopt;
  return train::GradualConfig{parse_pattern(o.pattern), o.to, o.prune_every, o.prune_end};
}

// The training settings: the options, with defaults that depend on whether
// the model was ever trained.
train::TrainConfig train_config(const FinetuneOptions& o, bool scratch, std::optional<train::GradualConfig> gradual) {
  train::TrainConfig cfg;
  cfg.epochs = o.epochs ? *o.epochs : (scratch ? 8 : 3);
  cfg.batch = o.batch;
  cfg.sgd.lr = o.lr ? *o.lr : (scratch ? 0.1 : 0.02);
  cfg.sgd.schedule = train::schedule_from_name(o.schedule);
  cfg.sgd.momentum = o.momentum;
  cfg.sgd.nesterov = !o.no_nesterov;
  cfg.sgd.weight_decay = o.weight_decay;
  cfg.seed = o.seed;
  cfg.aug.pad = o.no_augment ? 0 : o.crop_pad;
  cfg.aug.flip = !o.no_augment;
  cfg.gradual = std::move(gradual);
  cfg.bdwp = o.bdwp;
  cfg.bdwp_cfg.shared = o.bdwp_shared;
  cfg.bdwp_cfg.every = o.bdwp_every;
  cfg.bdwp_cfg.grad_every = o.bdwp_grad_every;
  cfg.sync_bn = o.bn_stats == "sync";
  cfg.accumulate = o.accumulate;
  cfg.memory_budget = o.max_memory.empty() ? 0.0 : o.max_memory == "off" ? -1.0 : train::parse_memory(o.max_memory, "--max-memory");
  return cfg;
}

// The checkpoint to resume from, checked against this run's settings
// before the data is read; its model replaces m.
train::Checkpoint resume_from(const std::string& ckpath, const Json& config, Model& m) {
  if (!file_exists(ckpath)) fail("cannot resume: no checkpoint '{}'", ckpath);
  Model cm = read_model(ckpath);
  std::optional<train::Checkpoint> ck = train::read_train_group(ckpath, ckpath);
  if (!ck) fail("cannot resume: '{}' holds no training state", ckpath);
  Json got;
  try {
    got = Json::parse(ck->config);
  } catch (const Error&) {
    fail("cannot resume: the training state of '{}' is damaged", ckpath);
  }
  if (got.dump() != config.dump()) fail("cannot resume from '{}': {}", ckpath, first_difference(config, got));
  m = std::move(cm);
  return std::move(*ck);
}

// One training run: the model, its trainer and where it writes.
class FinetuneRun {
 public:
  FinetuneRun(const FinetuneOptions& o, std::string out, std::string ckpath, Model& m, const train::TrainConfig& cfg,
              Json config)
      : o_(o), out_(std::move(out)), ckpath_(std::move(ckpath)), m_(m), cfg_(cfg), config_(std::move(config)),
        threads_(omp_get_max_threads()) {}

  // Trains (from checkpoint `ck` when given) and writes the result; an
  // interruption or failure says what was kept.
  void run(const OpenedData& data, std::optional<train::Checkpoint>& ck, TrainReport& report) {
    train::Trainer trainer(m_, *data.train, data.test.get(), cfg_);
    if (trainer.memory_needed() > 0)
      verbose_note(fmt::format("memory: about {} for a batch of {}{}", train::memory_str(trainer.memory_needed()),
                               trainer.batch_images(),
                               cfg_.accumulate > 1 ? fmt::format(" in {} parts", cfg_.accumulate) : std::string()));
    if (ck) train::restore_checkpoint(trainer, *ck, ckpath_);
    SignalLatch latch;
    train::TrainHooks hooks;
    hooks.progress = [&](const train::Progress& p) { report.progress(p); };
    hooks.epoch_done = [&](const train::EpochRecord& r) { report.epoch(r); };
    hooks.stop_requested = [&] { return latch.signal(); };
    hooks.checkpoint = [&](const train::TrainState& s) {
      if (s.complete) return;  // the final write below
      if (!ckpath_.empty() && writer()) save_checkpoint(trainer, s);
    };
    try {
      trainer.run(hooks);
    } catch (const train::Interrupted& i) {
      report.clear_bar();
      const int code = i.signal == SIGTERM ? kExitSigterm : kExitSigint;
      const train::TrainState& s = trainer.state();
      if (ckpath_.empty())
        throw Error(fmt::format("interrupted at epoch {} step {}: nothing saved (no checkpoint file)", s.epoch + 1, s.step),
                    code);
      throw Error(fmt::format("interrupted at epoch {} step {}: checkpoint saved to '{}' (continue with --resume)",
                              s.epoch + 1, s.step, ckpath_),
                  code);
    } catch (const Error& e) {
      report.clear_bar();
      std::string kept = saved_any_ ? fmt::format("; '{}' keeps the checkpoint of epoch {}", ckpath_, saved_epoch_)
                                    : std::string("; nothing was written");
      throw Error(std::string(e.what()) + kept, e.exit_code());
    }
    if (trainer.net().profiling() && writer())
      std::fprintf(stderr, "%s", trainer.net().profile_report().c_str());
    if (writer()) write_final(trainer);
    warn_unreadable("finetune", data, cfg_.comm);  // every rank: the count is summed
  }

 private:
  // Data-parallel: rank 0 alone writes files (every rank holds the same model).
  bool writer() const { return !cfg_.comm || cfg_.comm->rank() == 0; }

  // A checkpoint is the model plus /train; the command line goes into the
  // history of each write and is taken out again for the next one.
  void save_checkpoint(train::Trainer& trainer, const train::TrainState& s) {
    // BDWP: the file holds the masked weights, /train/dense the dense ones.
    std::map<std::string, Tensor> dense = trainer.begin_export();
    std::map<std::string, const Tensor*> dense_ptrs;
    for (const auto& [k, t] : dense) dense_ptrs[k] = &t;
    write_model(m_, ckpath_, [&](const std::string& temp) {
      train::write_train_group(temp, s, config_.dump(), threads_, &trainer.params(), dense_ptrs);
    });
    trainer.end_export(dense);
    m_.history.pop_back();
    saved_epoch_ = s.epoch;
    saved_any_ = true;
  }

  // The finished model (BDWP: masked with its last forward masks); /train
  // only records that it is complete.
  void write_final(train::Trainer& trainer) {
    train::TrainState done;
    done.epoch = cfg_.epochs;
    done.complete = true;
    std::map<std::string, Tensor> dense = trainer.begin_export();
    write_model(m_, out_, [&](const std::string& temp) {
      train::write_train_group(temp, done, config_.dump(), threads_, nullptr, {});
    });
    if (!o_.checkpoint.empty() && o_.checkpoint != out_) {
      m_.history.pop_back();
      write_model(m_, o_.checkpoint, [&](const std::string& temp) {
        train::write_train_group(temp, done, config_.dump(), threads_, nullptr, {});
      });
    }
  }

  const FinetuneOptions& o_;
  const std::string out_, ckpath_;
  Model& m_;
  const train::TrainConfig& cfg_;
  const Json config_;
  const int64_t threads_;
  int64_t saved_epoch_ = -1;
  bool saved_any_ = false;
};

void run_finetune_rank(const FinetuneOptions& o, train::Comm* comm);

// Data-parallel (started by mpirun or srun, bsp built with MPI): every rank
// runs the same command on its share of each batch. A failure on one rank
// must end them all (the others would wait in a collective forever): the
// failing rank prints its line and aborts the job. Failures every rank meets
// at once (a usage error, a divergence, an interruption) are printed by rank
// 0 alone: the other ranks give it a moment to abort them first.
void run_finetune(const FinetuneOptions& o) {
  train::Comm* comm = train::launched_comm();
  if (!comm || comm->size() == 1) return run_finetune_rank(o, nullptr);
  try {
    run_finetune_rank(o, comm);
  } catch (const Error& e) {
    if (comm->rank() > 0) sleep(3);
    std::string msg = e.what();
    for (char& ch : msg)
      if (ch == '\n') ch = ' ';
    std::fprintf(stderr, "bsp finetune: %s%s\n",
                 comm->rank() > 0 ? fmt::format("rank {}: ", comm->rank()).c_str() : "", msg.c_str());
    std::fflush(stderr);
    comm->abort(e.exit_code());
  }
}

void run_finetune_rank(const FinetuneOptions& o, train::Comm* comm) {
  const bool writer = !comm || comm->rank() == 0;
  if (o.data.spec.empty())
    fail_usage("--data is required (fashion-mnist, a directory of IDX files, an HDF5 data file or an image folder)");
  const std::string out = resolve_output(o.input, o.out);
  const std::string ckpath = !o.checkpoint.empty() ? o.checkpoint : (out == "-" ? "" : out);
  std::optional<train::GradualConfig> gradual = check_options(o, ckpath);
  apply_threads(o.threads);

  Model m = read_model(o.input);
  if (writer) note_rebuilt_weights(m, "finetune", /*always=*/true);
  train::TrainConfig cfg = train_config(o, train::never_trained(m), std::move(gradual));
  cfg.comm = comm;
  const Json config = run_config(o, cfg, content_hash(m));
  std::optional<train::Checkpoint> ck;
  if (o.resume) ck = resume_from(ckpath, config, m);

  // The model keeps the normalisation it was first trained with (and the
  // class names of the first image folder).
  DataOptions dopt = o.data;
  dopt.augment = !o.no_augment;
  dopt.aug = cfg.aug;
  const OpenedData data = open_data(dopt, m, o.input, DataPart::Training);
  train::set_model_normalization(m, data.norm);
  if (!data.classes.empty()) train::set_model_class_names(m, data.classes);

  FILE* lines = o.quiet || !writer ? nullptr : (out == "-" ? stderr : stdout);
  TrainReport report(lines, writer ? o.log : std::string());
  if (comm)
    report.note(fmt::format("data-parallel: {} ranks, each {} of the {} images of a batch", comm->size(),
                            train::share_of(std::min(cfg.batch, data.train->size()), 0, comm->size()).count,
                            std::min(cfg.batch, data.train->size())));
  if (data.folder)
    report.note(fmt::format("image folder '{}': {} training{} images{}, decoded by {} thread{}", data.name,
                            data.train->size(), data.test ? fmt::format(" and {} val", data.test->size()) : "",
                            data.classes.empty() ? "" : fmt::format(" in {} classes", data.classes.size()),
                            o.data.workers, o.data.workers == 1 ? "" : "s"));
  if (ck && ck->state.complete) {
    report.note(fmt::format("'{}': training is already complete ({} epochs)", ckpath, cfg.epochs));
    if (out != ckpath && writer) write_model(m, out);
    return;
  }
  FinetuneRun(o, out, ckpath, m, cfg, config).run(data, ck, report);
}

}  // namespace

Runner setup_finetune(CLI::App& sub) {
  auto o = std::make_shared<FinetuneOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--data", o->data.spec,
                 "fashion-mnist, a directory of IDX files, an HDF5 data file (bsp-format(5)), or an image folder "
                 "(DIR/train/CLASS/*.jpg|png, DIR/val/...; or train.txt, val.txt lists)")
      ->type_name("D");
  add_output_options(sub, o->out);
  sub.add_option("--epochs", o->epochs, "epochs (default: 8 for a never-trained model, else 3)")->type_name("N");
  sub.add_option("--batch", o->batch, "images per step (default 128)")->type_name("N");
  sub.add_option("--lr", o->lr, "peak learning rate (default: 0.1 for a never-trained model, else 0.02)")
      ->type_name("X");
  sub.add_option("--schedule", o->schedule, "learning rate schedule: onecycle (default), cosine, step, constant")
      ->type_name("S");
  sub.add_option("--momentum", o->momentum, "SGD momentum (default 0.9; onecycle cycles it by +-0.05)")
      ->type_name("M");
  sub.add_flag("--no-nesterov", o->no_nesterov, "plain momentum instead of Nesterov's");
  sub.add_option("--weight-decay", o->weight_decay, "L2 weight decay on every parameter (default 5e-4)")
      ->type_name("W");
  sub.add_option("--seed", o->seed, "seed of the shuffle and the augmentation (default 0)")->type_name("N");
  add_threads_option(sub, o->threads);
  sub.add_flag("--no-augment", o->no_augment,
               "train on the images as they are (no random crop, no flip; image folders: the evaluation transform)");
  sub.add_option("--crop-pad", o->crop_pad, "random crop: shift by up to N pixels, zeros shifted in (default 2)")
      ->type_name("N");
  sub.add_option("--limit", o->data.limit, "use only the first N training and N test images")->type_name("N");
  add_data_options(sub, o->data);
  sub.add_option("--checkpoint", o->checkpoint, "checkpoint file (default: the output file)")->type_name("FILE");
  sub.add_flag("--resume", o->resume, "continue from the checkpoint");
  sub.add_option("--log", o->log, "append one record per epoch: CSV if FILE ends in .csv, else JSON lines")
      ->type_name("FILE");
  sub.add_flag("--gradual", o->gradual, "raise sparsity during training (Zhu & Gupta's cubic schedule)");
  sub.add_option("--pattern", o->pattern, "with --gradual: the sparsity pattern, as bsp prune names it")
      ->type_name("P");
  sub.add_option("--to", o->to, "with --gradual: the final density of every pruned layer")->type_name("D");
  sub.add_option("--prune-every", o->prune_every, "with --gradual: steps between pruning events (default 100)")
      ->type_name("K");
  sub.add_option("--prune-end", o->prune_end,
                 "with --gradual: fraction of the training steps by which --to is reached (default 0.75)")
      ->type_name("F");
  sub.add_flag("--bdwp", o->bdwp, "nm:N:M layers: bi-directional weight pruning with SR-STE (see the manual)");
  sub.add_option("--bdwp-shared", o->bdwp_shared,
                 "with --bdwp: S output (input) channels share their N:M choice; 8 makes the sparse products fast "
                 "(default 1: per channel, the paper)")
      ->type_name("S");
  sub.add_option("--bdwp-every", o->bdwp_every, "with --bdwp: steps between mask updates (default 1)")
      ->type_name("K");
  sub.add_option("--bdwp-grad-every", o->bdwp_grad_every,
                 "with --bdwp: convolutions compute the pruned weights' gradient every G steps, scaled by G "
                 "(default 1: every step, the paper)")
      ->type_name("G");
  sub.add_option("--accumulate", o->accumulate,
                 "pass each batch through the network in K parts, their gradients summed before the step (less memory; "
                 "batchnorm statistics over each part; default 1)")
      ->type_name("K");
  sub.add_option("--max-memory", o->max_memory,
                 "refuse a batch whose training needs more than SIZE (e.g. 8G; default: the memory available; off: no "
                 "check)")
      ->type_name("SIZE");
  sub.add_option("--bn-stats", o->bn_stats,
                 "data-parallel runs: batchnorm statistics over the whole global batch (sync, default) or over each "
                 "rank's share (local)")
      ->type_name("sync|local");
  return [o] {
    o->quiet = quiet();
    run_finetune(*o);
  };
}

}  // namespace bsp::cli
