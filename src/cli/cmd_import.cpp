// bsp import: an ONNX model into a bsp model file (man/bsp-import.1).
#include <cmath>
#include <cstdlib>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "onnx/import.hpp"

namespace bsp::cli {

namespace {
struct ImportCliOptions {
  std::string input, output, input_shape, mean, std;
};

// "224x224x3" -> [224, 224, 3].
Shape parse_hwc(const std::string& s) {
  Shape v;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    char* end = nullptr;
    const long long x = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end || x < 1) fail_usage("--input-shape '{}' is not HxWxC with positive sizes", s);
    v.push_back(x);
  }
  if (v.size() != 3) fail_usage("--input-shape '{}' is not HxWxC with positive sizes", s);
  return v;
}

// "0.485,0.456,0.406" -> the values.
std::vector<double> parse_list(const std::string& s, const char* what) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    const double x = std::strtod(part.c_str(), &end);
    if (part.empty() || *end || !std::isfinite(x)) fail_usage("--input-{} '{}' is not a comma-separated list of numbers", what, s);
    v.push_back(x);
  }
  if (v.empty()) fail_usage("--input-{} is empty", what);
  return v;
}

void run_import(const ImportCliOptions& o) {
  if (o.output.empty()) fail_usage("no output file: give -o FILE");
  onnx_io::ImportOptions opt;
  if (!o.input_shape.empty()) opt.input_shape = parse_hwc(o.input_shape);
  if (!o.mean.empty()) opt.mean = parse_list(o.mean, "mean");
  if (!o.std.empty()) opt.std = parse_list(o.std, "std");
  for (double s : opt.std)
    if (!(s > 0)) fail_usage("--input-std values must be positive");
  if (o.input == "-") fail_usage("an ONNX model is read from a file, not stdin");
  Model m = onnx_io::import_onnx(o.input, o.input, opt);
  write_model(m, o.output);
}
}  // namespace

Runner setup_import(CLI::App& sub) {
  auto o = std::make_shared<ImportCliOptions>();
  sub.add_option("model", o->input, "ONNX model file (.onnx)")->required()->type_name("MODEL");
  sub.add_option("-o,--output", o->output, "output model file ('-' for stdout)")->type_name("FILE");
  add_compress_option(sub);
  sub.add_option("--input-shape", o->input_shape, "the input's H, W and C, for dynamic dimensions (e.g. 224x224x3)")
      ->type_name("HxWxC");
  sub.add_option("--input-mean", o->mean, "the normalisation's per-channel means (e.g. 0.485,0.456,0.406)")
      ->type_name("M,...");
  sub.add_option("--input-std", o->std, "the normalisation's per-channel standard deviations (e.g. 0.229,0.224,0.225)")
      ->type_name("S,...");
  return [o] { run_import(*o); };
}

}  // namespace bsp::cli
