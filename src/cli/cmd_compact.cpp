// bsp compact: store every conv2d/dense layer in its compact form, in fp32,
// bf16 or int8 (man/bsp-compact.1).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/calib.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "kernels/runner.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::cli {

namespace {
struct CompactCliOptions {
  std::string input;
  OutputOptions out;
  std::string format = "auto";
  std::string dtype = "fp32";
  bool pow2 = false;
  std::string calib;
  int64_t calib_images = 128;
  int threads = 0;
};

void run_compact(const CompactCliOptions& o) {
  compact::CompactOptions opt;
  if (o.format != "auto") {
    auto f = compact::format_from_name(o.format);
    if (!f) fail_usage("unknown --format '{}' (auto, bsr, nm, tw, dense)", o.format);
    opt.format = *f;
  }
  auto d = dtype_from_name(o.dtype);
  if (!d) fail_usage("unknown --dtype '{}' (fp32, bf16, int8)", o.dtype);
  opt.dtype = *d;
  opt.pow2 = o.pow2;
  if (opt.dtype != DType::Int8) {
    if (o.pow2) fail_usage("--pow2 needs --dtype int8");
    if (!o.calib.empty()) fail_usage("--calib needs --dtype int8");
  }
  if (o.calib_images < 1) fail_usage("--calib-images must be at least 1");
  const std::string out = resolve_output(o.input, o.out);
  apply_threads(o.threads);

  Model m = read_model(o.input);
  // Compacting weights rebuilt from a lossy form would compound its error unseen.
  if (m.rebuilt && !m.rebuilt->nodes.empty() && m.rebuilt->dtype != DType::FP32)
    fail("'{}' has no dense weights (bsp strip), and rebuilding them from its {} compact form is not exact: compact "
         "the file it was stripped from",
         o.input, dtype_name(m.rebuilt->dtype));
  Tensor calib;
  if (opt.dtype == DType::Int8) calib = calibration_images(m, o.calib, o.calib_images, "compact");
  if (opt.dtype == DType::Int8) opt.calib_forward = kernels::calibration_forward(m);
  auto c = std::make_shared<compact::CompactModel>(compact::compact_model(m, opt, &calib));

  if (isatty(STDERR_FILENO) && !quiet()) {
    int64_t dense = 0, packed = 0;
    int count[4] = {0, 0, 0, 0};
    for (const auto& [name, l] : c->layers) {
      dense += static_cast<int64_t>(m.find(name)->param("weight").size() * sizeof(float));
      packed += l.bytes();
      count[static_cast<int>(l.format)]++;
    }
    std::fprintf(stderr, "compact: %zu layers (bsr %d, nm %d, tw %d, dense %d), %s, weights %s -> %s bytes (%.2fx)\n",
                 c->layers.size(), count[1], count[2], count[3], count[0], dtype_name(c->dtype),
                 with_commas(dense).c_str(), with_commas(packed).c_str(),
                 packed ? static_cast<double>(dense) / static_cast<double>(packed) : 0.0);
  }
  set_compact(m, std::move(c));
  write_model(m, out);
}
}  // namespace

Runner setup_compact(CLI::App& sub) {
  auto o = std::make_shared<CompactCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  add_output_options(sub, o->out);
  sub.add_option("--format", o->format,
                 "auto (from each layer's pattern, default), or bsr, nm, tw, dense for every pruned layer")
      ->type_name("F");
  sub.add_option("--dtype", o->dtype, "fp32 (default), bf16 or int8")->type_name("T");
  sub.add_flag("--pow2", o->pow2, "int8: power-of-two weight and activation scales");
  sub.add_option("--calib", o->calib,
                 "int8: calibration images: fashion-mnist, a directory of IDX files or an HDF5 data file")
      ->type_name("DATA");
  sub.add_option("--calib-images", o->calib_images, "int8: how many calibration images (default 128)")
      ->type_name("N");
  add_threads_option(sub, o->threads);
  return [o] { run_compact(*o); };
}

}  // namespace bsp::cli
