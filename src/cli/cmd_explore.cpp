// bsp explore: per-layer sensitivity and the search over activation
// thresholds (--activations) or weight densities (--weights)
// (man/bsp-explore.1). The search itself lives in src/explore.
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>

#include "aie2/estimate.hpp"
#include "aie2/hardware.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/act_sparsity.hpp"
#include "core/checked.hpp"
#include "core/safe_file.hpp"
#include "data/dataset.hpp"
#include "explore/act_search.hpp"
#include "explore/eval_log.hpp"
#include "explore/evaluator.hpp"
#include "explore/weight_density.hpp"
#include "sparsity/prune.hpp"
#include "train/model_data.hpp"
#include "train/trainer.hpp"

namespace bsp::cli {

namespace {

using namespace bsp::explore;

struct ExploreOptions {
  std::string input, data, output;
  bool activations = false, weights = false;
  std::optional<double> max_drop;
  std::string front, block, ladder;
  int64_t holdout = 2000;
  bool holdout_first = false;
  uint64_t seed = 0;
  std::string log, resume;
  int64_t finetune_epochs = 0;
  std::string pattern;
  std::optional<double> density;
  std::string densities;
  bool include_first = false;
  std::optional<std::string> layers, exclude;
  int64_t batch = 256;
  std::string target = "aie2-4x4-spex";  // the front's estimated AIE2 time; "none": no column
  int threads = 0;
  bool quiet = false;
  // Options that belong to one mode only.
  std::vector<const CLI::Option*> act_only, weight_only;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}


// "0.1,0.2,..." strictly increasing, each in (lo, hi) or (lo, hi].
std::vector<double> parse_list(const std::string& s, const char* option, bool upper_open) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(pos, end - pos);
    char* tail = nullptr;
    errno = 0;
    const double v = part.empty() ? NAN : std::strtod(part.c_str(), &tail);
    if (part.empty() || errno || (tail && *tail) || !(v > 0) || (upper_open ? !(v < 1) : !(v <= 1)))
      fail_usage("{} '{}': '{}' is not a number in (0, 1{}", option, s, part, upper_open ? ")" : "]");
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

// The options every mode checks before reading anything.
void check_common(const ExploreOptions& o) {
  if (o.activations == o.weights)
    fail_usage("{}", o.activations ? "--activations and --weights do not go together: choose one"
                                   : "choose what to explore: --activations or --weights");
  if (o.data.empty()) fail_usage("--data is required (fashion-mnist, a directory of IDX files or an HDF5 data file)");
  if (o.output.empty()) fail_usage("no output file: give -o FILE");
  if (o.output == "-") fail_usage("-o - is not supported: give a file");
  if (o.output == o.input || same_file(o.output, o.input)) fail_usage("output '{}' is the input file", o.output);
  if (o.holdout < 1) fail_usage("--holdout must be at least 1");
  if (o.batch < 1) fail_usage("--batch must be at least 1");
  if (o.log == "-") fail_usage("--log needs a file, not stdout");
  if (!o.log.empty() && (o.log == o.output || same_file(o.log, o.output)))
    fail_usage("--log '{}' is the output file", o.log);
  if (!o.resume.empty()) {
    std::FILE* f = std::fopen(o.resume.c_str(), "rb");
    if (!f) fail("cannot resume from '{}': {}", o.resume, errno_message(errno));
    std::fclose(f);
  }
  for (const CLI::Option* opt : o.activations ? o.weight_only : o.act_only)
    if (opt->count()) fail_usage("{} goes with {}", opt->get_name(), o.activations ? "--weights" : "--activations");
}

// The data, the held-out images and their normalisation. The data set is
// held by pointer: the evaluator keeps a reference to its test split.
struct Holdout {
  std::unique_ptr<DataSet> data;
  std::unique_ptr<HoldoutEval> eval;
};

Holdout load_holdout(const ExploreOptions& o, const Model& m, bool training) {
  Holdout h;
  h.data = std::make_unique<DataSet>(load_data(o.data, training ? DataPart::Training : DataPart::Evaluation));
  if (!h.data->test) fail("'{}' has no test split: the held-out images are drawn from it", h.data->name);
  const ImageSet& s = *h.data->test;
  train::check_data_fits(m, o.input, s, h.data->name, "test");
  if (training) train::check_data_fits(m, o.input, *h.data->train, h.data->name, "training");
  auto nm = train::model_normalization(m);
  const Normalization norm = nm ? *nm : channel_stats(s);
  h.eval = std::make_unique<HoldoutEval>(s, holdout_indices(s.n, o.holdout, o.seed, o.holdout_first), norm, o.batch);
  return h;
}

Json measurement_json(const Measurement& m) {
  Json j = Json::object();
  j["n"] = m.n;
  j["correct"] = m.correct;
  j["zero_block_fraction"] = m.zero_block_fraction;
  j["macs_saved_fraction"] = m.macs_saved_fraction;
  j["act_bytes"] = m.act_bytes;
  j["act_bytes_saved_fraction"] = m.act_bytes_saved_fraction;
  return j;
}

Measurement measurement_from(const Json& j) {
  Measurement m;
  m.n = j.at("n").as_int();
  m.correct = j.at("correct").as_int();
  m.zero_block_fraction = j.at("zero_block_fraction").as_double();
  m.macs_saved_fraction = j.at("macs_saved_fraction").as_double();
  m.act_bytes = j.at("act_bytes").as_double();
  m.act_bytes_saved_fraction = j.at("act_bytes_saved_fraction").as_double();
  return m;
}

class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), t0_(std::chrono::steady_clock::now()) {}
  template <typename... Args>
  void line(fmt::format_string<Args...> f, Args&&... args) const {
    if (quiet_) return;
    std::fprintf(stderr, "[%6.1f s] %s\n", seconds(), fmt::format(f, std::forward<Args>(args)...).c_str());
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  bool quiet_;
  std::chrono::steady_clock::time_point t0_;
};

// ---- --activations ----------------------------------------------------------

// Evaluates rule configurations of the searched layers on the held-out
// images, through the log.
class ActMeasure {
 public:
  ActMeasure(Model& m, const HoldoutEval& ev, std::vector<LayerInfo> all, std::vector<size_t> searched,
             std::array<int64_t, 3> block)
      : m_(m), ev_(ev), all_(std::move(all)), searched_(std::move(searched)), block_(block) {
    for (const LayerInfo& l : all_) total_macs_ += static_cast<double>(l.macs);
  }
  void set_ladders(const std::vector<ActLayer>* layers) { ladders_ = layers; }
  void set_log(EvalLog* log) { log_ = log; }
  int64_t evaluations() const { return evaluations_; }

  // Sets the searched layers' rules to `r` (nullptr: none).
  void apply(const Rungs* r) {
    for (size_t k = 0; k < searched_.size(); ++k) {
      const int rung = r ? (*r)[k] : -1;
      set_act_rule(m_.nodes[all_[searched_[k]].node],
                   rung < 0 ? 0.0 : (*ladders_)[k].ladder[static_cast<size_t>(rung)].threshold, block_);
    }
  }

  // Every layer's zero-block fraction (by node name) with rules `r`: a run
  // for the AIE2 estimate, not one of the search's evaluations (not counted).
  std::map<std::string, double> layer_fractions(const Rungs* r) {
    std::map<std::string, double> fr;
    run(r, nullptr, &fr);
    --evaluations_;
    return fr;
  }

  // The model with rules `r` (nullptr: none); maxima, when given, receives
  // a sample of the block maxima of every searched layer's input;
  // per_layer, when given, every layer's zero-block fraction by node name.
  Measurement run(const Rungs* r, std::vector<std::vector<float>>* maxima = nullptr,
                  std::map<std::string, double>* per_layer = nullptr) {
    apply(r);
    std::vector<std::array<int64_t, 3>> blocks;
    std::vector<float> t;
    for (const LayerInfo& l : all_) {
      const std::optional<ActRule> rule = act_rule(m_.nodes[l.node]);
      blocks.push_back(rule ? rule->block : block_);
      t.push_back(rule ? rule->t() : 0.0f);
    }
    std::vector<size_t> searched_at(all_.size(), SIZE_MAX);
    for (size_t k = 0; k < searched_.size(); ++k) searched_at[searched_[k]] = k;
    std::vector<BlockCount> counts(all_.size());
    const EvalOutcome e = ev_.run(m_, all_, [&](size_t k, const Tensor& x) {
      counts[k] += count_zero_blocks(x, blocks[k], t[k]);
      if (maxima && searched_at[k] != SIZE_MAX) block_maxima(x, blocks[k], (*maxima)[searched_at[k]], size_t{1} << 20);
    });
    ++evaluations_;
    Measurement m;
    m.n = e.n;
    m.correct = e.correct;
    int64_t blocks_all = 0, zero_all = 0, values = 0, zero_values = 0;
    double saved = 0;
    for (size_t k = 0; k < all_.size(); ++k) {
      blocks_all += counts[k].blocks;
      zero_all += counts[k].zero_blocks;
      values += counts[k].values;
      zero_values += counts[k].zero_values;
      saved += counts[k].fraction() * static_cast<double>(all_[k].macs);
      if (per_layer) (*per_layer)[m_.nodes[all_[k].node].name] = counts[k].fraction();
    }
    m.zero_block_fraction = blocks_all ? static_cast<double>(zero_all) / static_cast<double>(blocks_all) : 0;
    m.macs_saved_fraction = total_macs_ > 0 ? saved / total_macs_ : 0;
    m.act_bytes = e.n ? 4.0 * static_cast<double>(values - zero_values) / static_cast<double>(e.n) : 0;
    m.act_bytes_saved_fraction = values ? static_cast<double>(zero_values) / static_cast<double>(values) : 0;
    return m;
  }

  Measurement operator()(const Rungs& r) {
    std::string key = "act";
    for (int x : r) key += fmt::format(" {}", x);
    if (log_)
      if (const Json* j = log_->find(key)) return measurement_from(*j);
    const Measurement m = run(&r);
    if (log_) log_->record(key, measurement_json(m));
    return m;
  }

  double total_macs() const { return total_macs_; }

 private:
  Model& m_;
  const HoldoutEval& ev_;
  std::vector<LayerInfo> all_;
  std::vector<size_t> searched_;  // indices into all_
  std::array<int64_t, 3> block_;
  const std::vector<ActLayer>* ladders_ = nullptr;
  EvalLog* log_ = nullptr;
  double total_macs_ = 0;
  int64_t evaluations_ = 0;
};

// Finetunes m in place with its rules (the trainer applies them), with bsp
// finetune's defaults for a trained model.
void finetune(Model& m, const DataSet& data, int64_t epochs, uint64_t seed, const Progress& p) {
  train::TrainConfig cfg;
  cfg.epochs = epochs;
  cfg.batch = 128;
  cfg.sgd.lr = 0.02;
  cfg.seed = seed;
  cfg.aug.pad = 2;
  cfg.aug.flip = true;
  cfg.test_each_epoch = false;
  Normalization norm;
  if (auto nm = train::model_normalization(m))
    norm = *nm;
  else
    norm = channel_stats(*data.train);
  train::set_model_normalization(m, norm);
  train::Trainer trainer(m, *data.train, nullptr, norm, cfg);
  train::TrainHooks hooks;
  hooks.epoch_done = [&](const train::EpochRecord& r) {
    p.line("finetune epoch {}/{}: loss {:.4f}, train accuracy {:.2f}%, {:.1f} s", r.epoch, r.epochs, r.loss,
           100 * r.train_acc, r.seconds);
  };
  trainer.run(hooks);
}

Json front_row(size_t step, const std::string& layer, double threshold, const Measurement& m, double base_acc,
               double total_macs) {
  Json j = Json::object();
  j["step"] = static_cast<int64_t>(step);
  j["layer"] = layer.empty() ? Json() : Json(layer);
  j["threshold"] = layer.empty() ? Json() : Json(threshold);
  j["accuracy"] = m.accuracy();
  j["drop"] = drop_points(base_acc, m.accuracy());
  j["zero_block_fraction"] = m.zero_block_fraction;
  j["macs_saved_fraction"] = m.macs_saved_fraction;
  j["macs_saved"] = m.macs_saved_fraction * total_macs;
  j["act_bytes"] = m.act_bytes;
  j["act_bytes_saved_fraction"] = m.act_bytes_saved_fraction;
  return j;
}

void write_text(const std::string& path, const std::string& text) {
  OutputFile out(path);
  std::FILE* f = std::fopen(out.temp_path().c_str(), "wb");
  if (!f) fail("cannot write '{}': {}", path, errno_message(errno));
  const bool bad = std::fwrite(text.data(), 1, text.size(), f) != text.size();
  if (std::fclose(f) != 0 || bad) fail("cannot write '{}': {}", path, errno_message(errno));
  out.commit();
}

// The front as CSV: one row per point, the columns of the JSON rows.
std::string front_csv(const Json& rows) {
  std::vector<const char*> cols = {"step",       "layer",     "threshold",           "accuracy",
                                   "drop",       "zero_block_fraction", "macs_saved_fraction", "macs_saved",
                                   "act_bytes",  "act_bytes_saved_fraction"};
  if (!rows.as_array().empty() && rows.as_array().front().contains("aie2_time_s")) {
    cols.push_back("aie2_time_s");
    cols.push_back("aie2_speedup");
  }
  std::string out;
  for (size_t c = 0; c < std::size(cols); ++c) out += std::string(c ? "," : "") + cols[c];
  out += "\n";
  for (const Json& r : rows.as_array()) {
    for (size_t c = 0; c < std::size(cols); ++c) {
      const Json& v = r.at(cols[c]);
      out += c ? "," : "";
      if (v.is_null()) continue;
      out += v.is_string() ? v.as_string() : v.dump();
    }
    out += "\n";
  }
  return out;
}

// The estimated AIE2 time of the model as its rules stand now
// (bsp-estimate(1)): the program bsp schedule would make for `target`, each
// ruled layer charged its zero-block fraction measured on the held-out
// images (fp32 runner) when the target has the act_block_skip extension.
double aie2_time(const Model& m, const std::string& target, const std::map<std::string, double>& fractions) {
  aie2::EstimateRequest req;
  req.target = target;
  for (const auto& [name, f] : fractions) {
    const Node* n = m.find(name);
    if (n && act_rule(*n)) req.act_zero[name] = f;
  }
  return aie2::timed_program(m, req).est.total_s;
}

// Adds the estimated AIE2 time of every front row (its configuration
// measured again, for the per-layer fractions) and its speedup over the
// baseline (no rules). The model's rules are left as the last row's.
void add_aie2_times(Json& rows, const std::vector<Rungs>& configs, ActMeasure& measure, const Model& m,
                    const std::string& target, const Progress& p) {
  double base = 0;
  for (size_t i = 0; i < configs.size(); ++i) {
    const double t = aie2_time(m, target, measure.layer_fractions(&configs[i]));
    if (i == 0) base = t;
    Json& r = rows.as_array()[i];
    r["aie2_time_s"] = t;
    r["aie2_speedup"] = t > 0 ? base / t : 1.0;
    p.line("AIE2 estimate ({}) of front point {}: {:.4g} ms ({:.3f}x)", target, i, 1e3 * t, t > 0 ? base / t : 1.0);
  }
}

// The settings every evaluation of a log depends on, both modes (each adds
// its own).
Json log_header(const char* mode, const ExploreOptions& o, const Model& m, int64_t holdout) {
  Json header = Json::object();
  header["bsp_explore_log"] = 1;
  header["mode"] = mode;
  header["model"] = hex64(content_hash(m));
  header["data"] = o.data;
  header["holdout"] = holdout;
  header["holdout_first"] = o.holdout_first;
  header["seed"] = static_cast<int64_t>(o.seed);
  header["batch"] = o.batch;
  return header;
}

void run_activations(const ExploreOptions& o) {
  if (o.target != "none") aie2::load_target(o.target);  // a bad target: a usage error before any work
  const double P = *o.max_drop;
  if (!std::isfinite(P) || P < 0) fail_usage("--max-drop {} is not a finite number >= 0", P);
  if (o.finetune_epochs < 0) fail_usage("--finetune-epochs must be at least 0");
  if (!o.front.empty() && !ends_with(o.front, ".json") && !ends_with(o.front, ".csv"))
    fail_usage("--front '{}': name it FILE.json or FILE.csv (the extension sets the format)", o.front);
  if (!o.front.empty() && (o.front == o.output || o.front == o.log)) fail_usage("--front '{}' is another output", o.front);
  const std::array<int64_t, 3> block = o.block.empty() ? kDefaultActBlock : parse_act_block(o.block, "--block");
  const std::vector<double> quantiles = o.ladder.empty() ? default_quantiles() : parse_list(o.ladder, "--ladder", true);
  for (size_t i = 1; i < quantiles.size(); ++i)
    if (!(quantiles[i] > quantiles[i - 1])) fail_usage("--ladder '{}' is not increasing", o.ladder);

  Model m = read_model(o.input);
  note_rebuilt_weights(m, "explore", /*always=*/false);  // its output model holds them
  // Depthwise convs take rules too (their kernel skips zero blocks alike).
  const std::vector<size_t> sel = select_layers(m, {o.include_first, true, o.layers, o.exclude});
  const std::vector<LayerInfo> all = weighted_layers(m);
  std::vector<size_t> searched;
  for (size_t i : sel)
    for (size_t k = 0; k < all.size(); ++k)
      if (all[k].node == i) searched.push_back(k);
  // The search chooses the searched layers' rules: whatever they had goes.
  for (size_t k : searched) set_act_rule(m.nodes[all[k].node], 0.0, block);
  Holdout h = load_holdout(o, m, o.finetune_epochs > 0);
  const Progress p(o.quiet);

  ActMeasure measure(m, *h.eval, all, searched, block);
  std::vector<std::vector<float>> maxima(searched.size());
  const Measurement base = measure.run(nullptr, &maxima);
  std::vector<ActLayer> layers;
  Json ladders = Json::array();
  for (size_t k = 0; k < searched.size(); ++k) {
    const LayerInfo& li = all[searched[k]];
    ActLayer L;
    L.name = li.name;
    L.macs = li.macs;
    const std::vector<float>& mx = maxima[k];
    int64_t zero = 0;
    for (float v : mx) zero += v == 0.0f;
    L.base_fraction = mx.empty() ? 0 : static_cast<double>(zero) / static_cast<double>(mx.size());
    L.ladder = threshold_ladder(mx, quantiles);
    Json lj = Json::array();
    for (const Rung& r : L.ladder) lj.push_back(r.threshold);
    ladders.push_back(std::move(lj));
    layers.push_back(std::move(L));
  }
  measure.set_ladders(&layers);

  // Everything an evaluation depends on (not --max-drop: a resumed run may
  // change the budget and reuse every evaluation).
  Json header = log_header("activations", o, m, base.n);
  header["block"] = Json(Json::Array{block[0], block[1], block[2]});
  Json names = Json::array();
  for (const ActLayer& L : layers) names.push_back(L.name);
  header["layers"] = std::move(names);
  header["ladders"] = std::move(ladders);
  header["baseline_correct"] = base.correct;
  EvalLog log(header, o.resume, o.log.empty() ? o.resume : o.log);
  measure.set_log(&log);
  p.line("baseline on {} held-out images: accuracy {:.4f}, zero input blocks {:.1f}%, MACs in zero blocks {:.1f}%",
         base.n, base.accuracy(), 100 * base.zero_block_fraction, 100 * base.macs_saved_fraction);
  if (log.resumed()) p.line("resuming: {} evaluations in '{}'", log.resumed(), o.resume);

  measure_sensitivity(layers, base, P, std::ref(measure), [&](size_t l, size_t k, const Measurement& r) {
    const ActLayer& L = layers[l];
    p.line("sensitivity {} rung {}/{} (threshold {:.4g}, {:.1f}% zero blocks): accuracy {:.4f}, drop {:.2f}", L.name,
           k + 1, L.ladder.size(), L.ladder[k].threshold, 100 * L.ladder[k].fraction, r.accuracy(),
           drop_points(base.accuracy(), r.accuracy()));
  });
  const SearchResult res = greedy_search(layers, base, P, std::ref(measure), [&](const SearchStep& s) {
    if (s.layer < 0) return;
    const ActLayer& L = layers[static_cast<size_t>(s.layer)];
    p.line("search {} -> rung {} (threshold {:.4g}): accuracy {:.4f}, drop {:.2f}, MACs saved {:.1f}%, activation "
           "bytes saved {:.1f}% [{}]",
           L.name, s.rung + 1, L.ladder[static_cast<size_t>(s.rung)].threshold, s.m.accuracy(),
           drop_points(base.accuracy(), s.m.accuracy()), 100 * s.m.macs_saved_fraction,
           100 * s.m.act_bytes_saved_fraction, s.accepted ? "kept" : s.within_budget ? "saves no MACs: layer stops" : "over budget: layer stops");
  });

  Json rows = Json::array();
  for (size_t i = 0; i < res.front.size(); ++i) {
    const SearchStep& s = res.front[i];
    const ActLayer* L = s.layer < 0 ? nullptr : &layers[static_cast<size_t>(s.layer)];
    rows.push_back(front_row(i, L ? L->name : "", L ? L->ladder[static_cast<size_t>(s.rung)].threshold : 0, s.m,
                             base.accuracy(), measure.total_macs()));
  }
  if (o.target != "none") {
    std::vector<Rungs> configs;
    for (const SearchStep& s : res.front) configs.push_back(s.rungs);
    add_aie2_times(rows, configs, measure, m, o.target, p);
  }
  measure.apply(&res.best);
  Measurement final_m = res.front.back().m;
  if (o.finetune_epochs > 0) {
    finetune(m, *h.data, o.finetune_epochs, o.seed, p);
    final_m = measure.run(&res.best);
    Json r = front_row(res.front.size(), "", 0, final_m, base.accuracy(), measure.total_macs());
    r["layer"] = "(finetune)";
    if (o.target != "none") {
      const double t = aie2_time(m, o.target, measure.layer_fractions(&res.best));
      const double t0 = rows.as_array().front().at("aie2_time_s").as_double();
      r["aie2_time_s"] = t;
      r["aie2_speedup"] = t > 0 ? t0 / t : 1.0;
    }
    rows.push_back(std::move(r));
    p.line("after {} finetune epoch{}: accuracy {:.4f}, drop {:.2f}", o.finetune_epochs,
           o.finetune_epochs == 1 ? "" : "s", final_m.accuracy(), drop_points(base.accuracy(), final_m.accuracy()));
  }
  if (!o.front.empty()) {
    if (ends_with(o.front, ".csv")) {
      write_text(o.front, front_csv(rows));
    } else {
      Json f = Json::object();
      f["model"] = o.input;
      f["data"] = o.data;
      f["holdout"] = base.n;
      f["max_drop"] = P;
      f["baseline_accuracy"] = base.accuracy();
      f["macs"] = measure.total_macs();
      Json ls = Json::array();
      for (const ActLayer& L : layers) {
        Json lj = Json::object();
        lj["name"] = L.name;
        lj["macs"] = L.macs;
        lj["base_fraction"] = L.base_fraction;
        Json sens = Json::array();
        for (size_t k = 0; k < L.drop.size(); ++k) {
          Json e = Json::object();
          e["threshold"] = L.ladder[k].threshold;
          e["fraction"] = L.ladder[k].fraction;
          e["accuracy"] = L.sensitivity[k].accuracy();
          e["drop"] = L.drop[k];
          sens.push_back(std::move(e));
        }
        lj["sensitivity"] = std::move(sens);
        ls.push_back(std::move(lj));
      }
      f["layers"] = std::move(ls);
      f["front"] = std::move(rows);
      write_text(o.front, f.dump(2) + "\n");
    }
  }
  write_model(m, o.output);
  if (!o.quiet) {
    int64_t rules = 0;
    for (int r : res.best) rules += r >= 0;
    std::printf("%lld of %zu layers with a rule: accuracy %.4f -> %.4f (drop %.2f points, budget %g), MACs saved "
                "%.1f%%, activation bytes saved %.1f%% on %lld held-out images; %lld evaluations (%zu reused), "
                "%.1f s\n",
                static_cast<long long>(rules), layers.size(), base.accuracy(), final_m.accuracy(),
                drop_points(base.accuracy(), final_m.accuracy()), P, 100 * final_m.macs_saved_fraction,
                100 * final_m.act_bytes_saved_fraction, static_cast<long long>(base.n),
                static_cast<long long>(measure.evaluations()), log.reused(), p.seconds());
  }
}

// ---- --weights --------------------------------------------------------------

void run_weights(const ExploreOptions& o) {
  if (o.pattern.empty()) fail_usage("--weights needs --pattern P (the pattern bsp prune will use)");
  if (!o.density) fail_usage("--weights needs --density X (the overall density to reach)");
  const double X = *o.density;
  if (!(X > 0.0 && X <= 1.0)) fail_usage("--density {} is not in (0, 1]", X);
  const Pattern pat = parse_pattern(o.pattern);
  if (pat.implied_density())
    fail_usage("{} fixes every layer's density ({}): there is nothing to allocate", pat.str(), *pat.implied_density());
  std::vector<double> grid =
      o.densities.empty() ? std::vector<double>{0.75, 0.5, 0.25, 0.125} : parse_list(o.densities, "--densities", false);
  for (size_t i = 1; i < grid.size(); ++i)
    if (!(grid[i] < grid[i - 1])) fail_usage("--densities '{}' is not decreasing", o.densities);
  for (double d : grid)
    if (d > pat.max_density()) fail_usage("--densities: {} is above what {} can keep ({})", d, pat.str(), pat.max_density());

  Model m = read_model(o.input);
  const std::vector<size_t> sel = select_layers(m, {o.include_first, false, o.layers, o.exclude});
  // The layers and the densities to measure, checked against the target
  // before anything is measured.
  std::vector<DensityLayer> layers;
  for (size_t i : sel) {
    const Node& n = m.nodes[i];
    DensityLayer L;
    L.name = n.name;
    L.weights = static_cast<int64_t>(n.param("weight").size());
    L.start = n.mask ? n.mask->density : 1.0;
    for (double d : grid)
      if (d < L.start) L.densities.push_back(d);  // masks only shrink: nothing to measure above
    layers.push_back(std::move(L));
  }
  check_density_target(layers, X);
  Holdout h = load_holdout(o, m, false);
  const Progress p(o.quiet);
  const std::vector<LayerInfo> all = weighted_layers(m);
  const EvalOutcome base = h.eval->run(m, all);

  Json header = log_header("weights", o, m, base.n);
  header["pattern"] = pat.str();
  header["baseline_correct"] = base.correct;
  EvalLog log(header, o.resume, o.log.empty() ? o.resume : o.log);
  p.line("baseline on {} held-out images: accuracy {:.4f}", base.n, base.accuracy());
  if (log.resumed()) p.line("resuming: {} evaluations in '{}'", log.resumed(), o.resume);

  int64_t evaluations = 1;
  for (size_t li = 0; li < sel.size(); ++li) {
    Node& n = m.nodes[sel[li]];
    DensityLayer& L = layers[li];
    for (double d : L.densities) {
      const std::string key = fmt::format("weights {} {}", n.name, d);
      EvalOutcome e;
      if (const Json* j = log.find(key)) {
        e.n = j->at("n").as_int();
        e.correct = j->at("correct").as_int();
      } else {
        // This layer alone pruned; its weights and mask are put back after.
        Tensor w = n.param("weight").clone();
        std::optional<Mask> mask;
        if (n.mask) mask = n.mask->clone();
        prune_layer(n, pat, d);
        e = h.eval->run(m, all);
        ++evaluations;
        n.param("weight") = std::move(w);
        n.mask = std::move(mask);
        Json r = Json::object();
        r["n"] = e.n;
        r["correct"] = e.correct;
        log.record(key, r);
      }
      L.drops.push_back(drop_points(base.accuracy(), e.accuracy()));
      p.line("sensitivity {} at density {}: accuracy {:.4f}, drop {:.2f}", n.name, d, e.accuracy(), L.drops.back());
    }
  }
  const DensityPlan plan = allocate_densities(layers, X);
  std::vector<std::string> comment = {
      fmt::format("bsp explore --weights: per-layer densities for an overall density of {} ({})", X, pat.str()),
      fmt::format("model {}, {} held-out images, baseline accuracy {:.4f}, predicted drop {:.3f} points", o.input,
                  base.n, base.accuracy(), plan.predicted_drop),
      fmt::format("use: bsp prune {} --pattern {} --density-file {} -o OUT", o.input, pat.str(), o.output),
      "columns: layer, density (unlisted layers are left as they are)"};
  write_text(o.output, density_file_text(layers, plan, comment));
  if (!o.quiet) {
    std::printf("%zu layers: overall density %.4f (target %g), predicted drop %.2f points on %lld held-out images; "
                "%lld evaluations (%zu reused), %.1f s\n",
                layers.size(), plan.overall, X, plan.predicted_drop, static_cast<long long>(base.n),
                static_cast<long long>(evaluations), log.reused(), p.seconds());
  }
}

void run_explore(const ExploreOptions& o) {
  check_common(o);
  apply_threads(o.threads);
  if (o.activations) {
    if (!o.max_drop) fail_usage("--activations needs --max-drop P (accuracy points)");
    run_activations(o);
  } else {
    run_weights(o);
  }
}

}  // namespace

Runner setup_explore(CLI::App& sub) {
  auto o = std::make_shared<ExploreOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--data", o->data, "fashion-mnist, a directory of IDX files, or an HDF5 data file (bsp-format(5))")
      ->type_name("D");
  sub.add_option("-o,--output", o->output, "--activations: the model with the chosen rules; --weights: the density file")
      ->type_name("FILE");
  sub.add_flag("--activations", o->activations, "search per-layer activation thresholds within --max-drop");
  sub.add_flag("--weights", o->weights, "allocate per-layer weight densities reaching --density");
  o->act_only.push_back(add_compress_option(sub));
  o->act_only.push_back(
      sub.add_option("--max-drop", o->max_drop, "accuracy drop allowed, in points (>= 0)")->type_name("P"));
  o->act_only.push_back(
      sub.add_option("--front", o->front, "also write the trade-off front: FILE.json or FILE.csv")->type_name("FILE"));
  o->act_only.push_back(
      sub.add_option("--block", o->block, "activation block BHxBWxBC (default 1x8x8)")->type_name("B"));
  o->act_only.push_back(sub.add_option("--ladder", o->ladder,
                                       "fractions of each layer's nonzero input blocks its thresholds zero "
                                       "(default 0.05,0.1,0.15,0.2,0.25,0.3,0.4,...,0.9)")
                            ->type_name("Q,..."));
  o->act_only.push_back(
      sub.add_option("--finetune-epochs", o->finetune_epochs, "finetune E epochs with the chosen rules (default 0)")
          ->type_name("E"));
  o->weight_only.push_back(
      sub.add_option("-p,--pattern", o->pattern, "the weight pattern, as bsp prune names it")->type_name("P"));
  o->weight_only.push_back(
      sub.add_option("-d,--density", o->density, "overall density of the selected layers, in (0, 1]")->type_name("X"));
  o->weight_only.push_back(sub.add_option("--densities", o->densities,
                                          "densities each layer is measured at, decreasing (default 0.75,0.5,0.25,0.125)")
                               ->type_name("D,..."));
  sub.add_option("--holdout", o->holdout, "held-out images drawn from the test split (default 2000)")->type_name("N");
  sub.add_flag("--holdout-first", o->holdout_first, "hold out the first N test images (bsp eval --limit N's)");
  sub.add_option("--seed", o->seed, "seed of the held-out draw and of the finetune (default 0)")->type_name("S");
  sub.add_flag("--include-first", o->include_first, "also search the first conv (left out by default)");
  sub.add_option("--layers", o->layers, "search only the conv2d/dense layers whose name matches REGEX")
      ->type_name("REGEX");
  sub.add_option("--exclude", o->exclude, "leave out the layers whose name matches REGEX")->type_name("REGEX");
  sub.add_option("--log", o->log, "record every evaluation in FILE (JSON lines) as it is made")->type_name("FILE");
  sub.add_option("--resume", o->resume, "reuse the evaluations of LOG (same model and settings); continues it")
      ->type_name("LOG");
  sub.add_option("--batch", o->batch, "images per forward pass (default 256)")->type_name("N");
  o->act_only.push_back(sub.add_option("--target", o->target,
                                       "AIE2 target of the front's estimated time (default aie2-4x4-spex; none: no "
                                       "estimate)")
                            ->type_name("T"));
  add_threads_option(sub, o->threads);
  return [o] {
    o->quiet = quiet();
    run_explore(*o);
  };
}

}  // namespace bsp::cli
