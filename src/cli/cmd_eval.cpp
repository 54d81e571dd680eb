// bsp eval: test accuracy, loss and speed of a model on a data set
// (man/bsp-eval.1).
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/h5.hpp"
#include "core/npy.hpp"
#include "core/safe_file.hpp"
#include "cli/data_source.hpp"
#include "data/dataset.hpp"
#include "train/evaluate.hpp"
#include "train/model_data.hpp"

namespace bsp::cli {

namespace {

struct EvalOptions {
  std::string input;
  DataOptions data;  // --data, --limit, --workers, --crop-fraction, --mean, --std
  int64_t batch = 256;
  int threads = 0;
  bool json = false;
  std::string logits;
};

// The outputs of every image: a .npy file, or an HDF5 file with one
// dataset "logits" ([images, outputs] float32), written safely.
void write_logits(const Tensor& t, const std::string& path) {
  OutputFile out(path);
  const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (npy) {
    write_npy(t, out.temp_path());
  } else {
    h5::Handle f = h5::create_file(out.temp_path());
    h5::write_array(f, "logits", t);
  }
  out.commit();
}

void run_eval(const EvalOptions& o) {
  if (o.data.spec.empty())
    fail_usage("--data is required (fashion-mnist, a directory of IDX files, an HDF5 data file or an image folder)");
  if (o.batch < 1) fail_usage("--batch must be at least 1");
  apply_threads(o.threads);
  Model m = read_model(o.input);
  const OpenedData data = open_data(o.data, m, o.input, DataPart::Evaluation);
  const BatchSource& s = *data.test;
  auto predictor = train::make_predictor(m, std::min(o.batch, s.size()));
  Tensor logits;
  const train::EvalResult r = train::evaluate(*predictor, s, o.logits.empty() ? nullptr : &logits);
  warn_unreadable("eval", data);
  if (!o.logits.empty()) write_logits(logits, o.logits);
  if (o.json) {
    Json j = Json::object();
    j["accuracy"] = r.accuracy;
    j["loss"] = r.loss;
    j["images_per_s"] = r.images_per_s();
    j["n"] = r.n;
    j["correct"] = static_cast<int64_t>(r.accuracy * static_cast<double>(r.n) + 0.5);
    j["seconds"] = r.seconds;
    j["data"] = data.name;
    j["engine"] = predictor->name();
    print_json(j);
    return;
  }
  std::printf("accuracy %.4f (%lld of %lld)  loss %.4f  %.0f images/s  [%s]\n", r.accuracy,
              static_cast<long long>(r.accuracy * static_cast<double>(r.n) + 0.5), static_cast<long long>(r.n), r.loss,
              r.images_per_s(), predictor->name());
}

}  // namespace

Runner setup_eval(CLI::App& sub) {
  auto o = std::make_shared<EvalOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--data", o->data.spec,
                 "fashion-mnist, a directory of IDX files, an HDF5 data file (bsp-format(5)), or an image folder "
                 "(its val/ class folders or val.txt; or a list file)")
      ->type_name("D");
  sub.add_option("--batch", o->batch, "images per forward pass (default 256)")->type_name("N");
  sub.add_option("--limit", o->data.limit, "evaluate only the first N images")->type_name("N");
  add_data_options(sub, o->data);
  add_threads_option(sub, o->threads);
  sub.add_flag("--json", o->json, "print {\"accuracy\", \"loss\", \"images_per_s\", \"n\", ...} as JSON");
  sub.add_option("--logits", o->logits, "also write every image's outputs to FILE: .npy, else HDF5 (dataset 'logits')")
      ->type_name("FILE");
  return [o] { run_eval(*o); };
}

}  // namespace bsp::cli
