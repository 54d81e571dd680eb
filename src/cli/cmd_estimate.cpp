// bsp estimate: the time of a model's AIE2 program, per layer, per
// instruction class and in total (man/bsp-estimate.1).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "aie2/codegen.hpp"
#include "aie2/estimate.hpp"
#include "aie2/store.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "plot/svg.hpp"
#include "compact/act_measure.hpp"
#include "core/act_sparsity.hpp"
#include "data/dataset.hpp"
#include "train/model_data.hpp"

namespace bsp::cli {

namespace {
struct EstimateCliOptions {
  std::string input;
  std::string target;
  std::string dtype;
  std::string model = "default";
  std::string compare;
  std::string mapping = "bsp";
  bool json = false;
  bool csv = false;
  std::string svg;  // --svg: per-layer time bars
  int tune = 1;
  std::string data;
  int64_t limit = 100;
};

// With --compare dense and activation rules: the dense program and the
// bsp one, each timed without and with the rules' zero blocks skipped.
struct Effects {
  double dense = 0, weights = 0, activations = 0, both = 0;
};

void print_table(const aie2::Estimate& e, const aie2::Estimate* dense, const aie2::Hardware& hw, const Effects* fx,
                 bool rules) {
  std::printf("target %s: %ld rows x %ld columns at %.2f GHz, %s, %s model%s\n\n", e.target.c_str(),
              static_cast<long>(hw.rows), static_cast<long>(hw.cols), hw.clock_ghz, e.dtype.c_str(),
              e.paper ? "the paper's" : "the default", e.paper ? " (1 GHz, efficiency 1, DDR not overlapped)" : "");
  size_t w = 5;
  for (const auto& l : e.layers) w = std::max(w, l.name.size());
  std::printf("%-*s  %-7s  %5s  %5s  %10s  %s%-7s  %7s%s\n", static_cast<int>(w), "layer", "kind", "cores", "imbal",
              "time(us)", dense ? " dense(us)  " : "", "bound", "overlap", rules ? "  act-zero" : "");
  for (size_t i = 0; i < e.layers.size(); ++i) {
    const auto& l = e.layers[i];
    std::string d;
    if (dense && i < dense->layers.size()) d = fmt::format(" {:9.1f}  ", dense->layers[i].seconds * 1e6);
    // The zero-block fraction of a ruled layer; '*': its blocks were skipped (act_block_skip).
    std::string a;
    if (rules) a = l.act_zero >= 0 ? fmt::format("  {:7.3f}{}", l.act_zero, l.act_skipped ? "*" : "") : "        -";
    std::printf("%-*s  %-7s  %5ld  %5.2f  %10.1f  %s%-7s  %6.2fx%s\n", static_cast<int>(w), l.name.c_str(), l.kind.c_str(),
                static_cast<long>(l.cores), l.imbalance, l.seconds * 1e6, d.c_str(), l.bound.c_str(),
                l.seconds > 0 ? l.serial_s / l.seconds : 1.0, a.c_str());
  }
  std::printf("\ntotal %.3f ms", e.total_s * 1e3);
  if (dense) std::printf(" (dense %.3f ms, speedup %.2fx)", dense->total_s * 1e3, dense->total_s / e.total_s);
  std::printf("; %s instructions executed\n\n", with_commas(e.executed).c_str());
  if (rules)
    std::printf("act-zero: the layer's measured zero-block fraction after its activation rule%s\n\n",
                hw.act_block_skip ? " (*: skipped by the target's act_block_skip extension)"
                                  : "; the target has no act_block_skip extension: charged as dense");
  if (fx) {
    std::printf("%-26s %10s %8s\n", "effect", "time(ms)", "speedup");
    const std::pair<const char*, double> rows[] = {{"dense", fx->dense},
                                                   {"weights sparse only", fx->weights},
                                                   {"activations sparse only", fx->activations},
                                                   {"both", fx->both}};
    for (const auto& [name, t] : rows) std::printf("%-26s %10.3f %7.2fx\n", name, t * 1e3, t > 0 ? fx->dense / t : 1.0);
    std::printf("(each against dense: weights dense, every activation block moved and multiplied)\n\n");
  }
  std::printf("%-8s %12s %14s %12s\n", "class", "count", "busy(ms)", "bytes/MACs");
  for (int c = 0; c < aie2::kClsCount; ++c) {
    const auto& s = e.cls[static_cast<size_t>(c)];
    std::printf("%-8s %12s %14.3f %12s\n", aie2::instr_class_name(c), with_commas(s.count).c_str(), s.busy_s * 1e3,
                with_commas(c == aie2::kClsComp ? s.macs : s.bytes).c_str());
  }
  std::printf("(busy: summed over the queues; transfers and compute overlap, so the total is less)\n");
}

// Per-layer time bars (dense above sparse with --compare dense), each split
// into the instruction classes in proportion to their busy time: classes
// overlap in time, so the split shows the mix, not a sequence.
void write_svg(const aie2::Estimate& e, const aie2::Estimate* dense, const std::string& path) {
  constexpr double kLeft = 250, kRight = 90, kBar = 11;
  double longest = 0;
  for (const auto& l : e.layers) longest = std::max(longest, l.seconds);
  if (dense)
    for (const auto& l : dense->layers) longest = std::max(longest, l.seconds);
  plot::Svg svg(960, 80);
  const double x1 = svg.width() - kRight;
  auto px = [&](double s) { return longest > 0 ? s / longest * (x1 - kLeft) : 0.0; };
  svg.text(480, 16,
           fmt::format("{} {}: per-layer time{} (total {:.3f} ms{})", e.target, e.dtype,
                       dense ? ", dense above sparse" : "", e.total_s * 1e3,
                       dense ? fmt::format(", dense {:.3f} ms, {:.2f}x", dense->total_s * 1e3,
                                           e.total_s > 0 ? dense->total_s / e.total_s : 1.0)
                             : std::string()),
           13, "middle");
  for (int c = 0; c < aie2::kClsCount; ++c) {
    svg.rect(kLeft + 90.0 * c, 26, 12, 10, plot::palette(static_cast<size_t>(c)));
    svg.text(kLeft + 90.0 * c + 16, 35, aie2::instr_class_name(c), 10);
  }
  double y = 46;
  auto bar = [&](const aie2::LayerEstimate& l, const char* tag) {
    double busy = 0;
    for (const auto& c : l.cls) busy += c.busy_s;
    double x = kLeft;
    for (int c = 0; c < aie2::kClsCount; ++c) {
      const double w = busy > 0 ? px(l.seconds) * l.cls[static_cast<size_t>(c)].busy_s / busy : 0.0;
      if (w <= 0) continue;
      svg.rect(x, y, w, kBar, plot::palette(static_cast<size_t>(c)),
               fmt::format("{} {}: {} {:.1f}% of busy time", l.name, tag, aie2::instr_class_name(c),
                           100 * l.cls[static_cast<size_t>(c)].busy_s / busy));
      x += w;
    }
    svg.text(kLeft + px(l.seconds) + 4, y + kBar - 2, fmt::format("{:.1f} us {}", l.seconds * 1e6, tag), 9,
             "start", "#444");
    y += kBar + 1;
  };
  for (size_t i = 0; i < e.layers.size(); ++i) {
    svg.text(kLeft - 6, y + (dense ? kBar : kBar - 2), e.layers[i].name, 10, "end");
    if (dense && i < dense->layers.size()) bar(dense->layers[i], "dense");
    bar(e.layers[i], dense ? "sparse" : "");
    y += 5;
  }
  svg.set_height(y + 10);
  svg.write(path);
}

void print_csv(const aie2::Estimate& e, const aie2::Estimate* dense, bool rules) {
  std::printf("layer,kind,cores,imbalance,time_s,%sddr_s,serial_s,bound", dense ? "dense_time_s," : "");
  for (int c = 0; c < aie2::kClsCount; ++c) std::printf(",%s_busy_s", aie2::instr_class_name(c));
  std::printf("%s\n", rules ? ",act_zero,act_skipped" : "");
  for (size_t i = 0; i < e.layers.size(); ++i) {
    const auto& l = e.layers[i];
    std::printf("%s,%s,%ld,%.4f,%.9g,", l.name.c_str(), l.kind.c_str(), static_cast<long>(l.cores), l.imbalance,
                l.seconds);
    if (dense) std::printf("%.9g,", i < dense->layers.size() ? dense->layers[i].seconds : 0.0);
    std::printf("%.9g,%.9g,%s", l.ddr_s, l.serial_s, l.bound.c_str());
    for (int c = 0; c < aie2::kClsCount; ++c) std::printf(",%.9g", l.cls[static_cast<size_t>(c)].busy_s);
    if (rules) {
      if (l.act_zero >= 0)
        std::printf(",%.9g,%d", l.act_zero, l.act_skipped ? 1 : 0);
      else
        std::printf(",,");
    }
    std::printf("\n");
  }
  std::printf("total,,,,%.9g,", e.total_s);
  if (dense) std::printf("%.9g,", dense->total_s);
  std::printf(",,");
  for (int c = 0; c < aie2::kClsCount; ++c) std::printf(",%.9g", e.cls[static_cast<size_t>(c)].busy_s);
  std::printf("%s\n", rules ? ",," : "");
}

void run_estimate(const EstimateCliOptions& o) {
  if (o.svg == "-") fail_usage("--svg -: the table goes to stdout; give the SVG a file name");
  if (o.json && o.csv) fail_usage("give --json or --csv, not both");
  if (o.model != "default" && o.model != "paper") fail_usage("unknown --model '{}' (default, paper)", o.model);
  if (!o.compare.empty() && o.compare != "dense") fail_usage("unknown --compare '{}' (dense)", o.compare);
  if (o.mapping != "bsp" && o.mapping != "paper") fail_usage("unknown --mapping '{}' (bsp, paper)", o.mapping);
  if (o.tune < 1 || o.tune > aie2::kMaxTune) fail_usage("--tune must be 1 to {}", aie2::kMaxTune);
  if (!o.dtype.empty()) parse_dtype(o.dtype);
  if (!o.target.empty()) aie2::load_target(o.target);  // a bad target is a usage error before reading the model
  aie2::EstimateRequest req;
  req.target = o.target;
  if (!o.dtype.empty()) req.dtype = parse_dtype(o.dtype);
  req.paper_model = o.model == "paper";
  req.paper_mapping = o.mapping == "paper";
  req.tune = o.tune;
  if (o.limit < 1) fail_usage("--limit must be at least 1");
  Model m = read_model(o.input);
  const bool rules = has_act_rules(m);
  if (!o.data.empty()) {
    // The zero-block fraction of every ruled layer, on the engine whose
    // values the program computes: int8 programs the int8 reference.
    DataSet data = load_data(o.data, DataPart::Evaluation);
    ImageSet& s = *data.test;
    train::check_data_fits(m, o.input, s, data.name, "test");
    const DType dt = req.dtype ? *req.dtype
                     : m.program ? m.program->program.dtype
                     : m.schedule ? m.schedule->dtype
                                  : aie2::model_dtype(m);
    auto nm = train::model_normalization(m);
    ActMeasureOptions mo;
    mo.engine = dt == DType::Int8 ? ActMeasureEngine::Int8 : ActMeasureEngine::FP32;
    for (const LayerActStats& l : measure_act_fractions(m, s, nm ? *nm : channel_stats(s), o.limit, mo))
      req.act_zero[l.name] = l.fraction();
  }
  const aie2::TimedProgram t = aie2::timed_program(m, req);
  std::unique_ptr<aie2::TimedProgram> d;
  std::unique_ptr<Effects> fx;
  if (!o.compare.empty()) {
    req.dense = true;
    d = std::make_unique<aie2::TimedProgram>(aie2::timed_program(m, req));
    if (rules) {
      // The same two programs timed with no block skipped: the rules off.
      fx = std::make_unique<Effects>();
      fx->both = t.est.total_s;
      fx->activations = d->est.total_s;
      fx->weights = aie2::estimate_program(t.program, t.schedule.get(), t.est.paper).total_s;
      fx->dense = aie2::estimate_program(d->program, d->schedule.get(), d->est.paper).total_s;
    }
  }
  if (!o.svg.empty()) write_svg(t.est, d ? &d->est : nullptr, o.svg);
  if (o.json) {
    Json j = aie2::estimate_json(t.est);
    if (d) {
      j["dense_total_s"] = d->est.total_s;
      j["speedup"] = t.est.total_s > 0 ? d->est.total_s / t.est.total_s : 1.0;
      Json dl = Json::array();
      for (const auto& l : d->est.layers) {
        Json x = Json::object();
        x["name"] = l.name;
        x["time_s"] = l.seconds;
        dl.push_back(std::move(x));
      }
      j["dense_layers"] = std::move(dl);
    }
    if (fx) {
      Json x = Json::object();
      for (const auto& [k, v] : {std::pair<const char*, double>{"dense_s", fx->dense}, {"weights_s", fx->weights},
                                 {"activations_s", fx->activations}, {"both_s", fx->both}})
        x[k] = v;
      x["weights_speedup"] = fx->weights > 0 ? fx->dense / fx->weights : 1.0;
      x["activations_speedup"] = fx->activations > 0 ? fx->dense / fx->activations : 1.0;
      x["both_speedup"] = fx->both > 0 ? fx->dense / fx->both : 1.0;
      j["effects"] = std::move(x);
    }
    print_json(j);
  } else if (o.csv) {
    print_csv(t.est, d ? &d->est : nullptr, rules);
  } else {
    print_table(t.est, d ? &d->est : nullptr, t.program.hw, fx.get(), rules);
  }
}
}  // namespace

Runner setup_estimate(CLI::App& sub) {
  auto o = std::make_shared<EstimateCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--target", o->target,
                 "schedule for this array instead of timing the stored program (default: the stored target, else aie2:4x4)")
      ->type_name("T");
  sub.add_option("--dtype", o->dtype, "schedule for this data type: int8, bf16, fp32")->type_name("T");
  sub.add_option("--model", o->model,
                 "cost assumptions: default (the target's description) or paper (1 GHz, efficiency 1, 4 GB/s "
                 "channels, DDR not overlapped)")
      ->type_name("M");
  sub.add_option("--mapping", o->mapping,
                 "bsp (the scheduler's choice, default) or paper (the paper compiler's data flow: width across "
                 "columns, channels across rows, activations through DDR at every layer)")
      ->type_name("M");
  sub.add_option("--compare", o->compare, "dense: also time the model with every weight block stored")->type_name("dense");
  sub.add_option("--tune", o->tune,
                 "for the schedules made here: time the N best plans of each layer and keep the fastest (as bsp "
                 "schedule --tune; default 1)")
      ->type_name("N");
  sub.add_option("--data", o->data,
                 "measure each activation rule's zero-block fraction on these images: fashion-mnist, a directory of "
                 "IDX files, or an HDF5 data file")
      ->type_name("D");
  sub.add_option("--limit", o->limit, "with --data: measure on the first N images (default 100)")->type_name("N");
  sub.add_flag("--json", o->json, "print JSON (schema in bsp-estimate(1))");
  sub.add_flag("--csv", o->csv, "print CSV: one row per layer and a total row");
  sub.add_option("--svg", o->svg, "also draw the per-layer times, split by instruction class, in this SVG file")
      ->type_name("FILE");
  return [o] { run_estimate(*o); };
}

}  // namespace bsp::cli
