// bsp sim: run a model's AIE2 program on the simulated array and compare the
// output with the reference forward pass (man/bsp-sim.1).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "aie2/schedule.hpp"
#include "aie2/sim.hpp"
#include "aie2/store.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "core/finite.hpp"
#include "core/npy.hpp"
#include "core/rng.hpp"

namespace bsp::cli {

namespace {
struct SimCliOptions {
  std::string input;
  std::optional<uint64_t> seed;
  std::string input_file;
  int64_t images = 1;
  double tolerance = 1e-4;
  bool json = false;
  bool progress = false;
  int threads = 0;
};

Tensor input_images(const Model& m, const SimCliOptions& o) {
  const Shape s = m.input_shape();
  if (!o.input_file.empty()) {
    Tensor x = read_npy(o.input_file);
    if (x.rank() == 3) x.reshape({1, x.dim(0), x.dim(1), x.dim(2)});
    if (x.rank() != 4 || x.dim(1) != s[0] || x.dim(2) != s[1] || x.dim(3) != s[2])
      fail("'{}' holds {}, the model takes [N, {}, {}, {}] (or [{}, {}, {}])", o.input_file, shape_str(x.shape()),
           s[0], s[1], s[2], s[0], s[1], s[2]);
    if (x.dim(0) < 1) fail("'{}' holds no image", o.input_file);
    // The int8 program would quantise a NaN to 0 and an infinity to 127.
    if (const int64_t e = first_nonfinite(x.data(), static_cast<int64_t>(x.size())); e < static_cast<int64_t>(x.size()))
      fail("'{}': image {} holds {} (inputs must be finite)", o.input_file, e / (static_cast<int64_t>(x.size()) / x.dim(0)),
           nonfinite_word(x[static_cast<size_t>(e)]));
    return x;
  }
  Tensor x({o.images, s[0], s[1], s[2]});
  fill_normal(x.data(), x.size(), 1.0, mix64(o.seed.value_or(0) + 0x51u));
  return x;
}

struct Progress {
  bool on = false;
};
void show_progress(size_t stage, size_t stages, void* ctx) {
  if (!static_cast<Progress*>(ctx)->on) return;
  std::fprintf(stderr, "\rbsp sim: stage %zu/%zu", stage, stages);
  if (stage == stages) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

void run_sim(const SimCliOptions& o) {
  if (o.seed && !o.input_file.empty()) fail_usage("give --random or --input, not both");
  if (o.images < 1) fail_usage("--images must be at least 1");
  if (!o.input_file.empty() && o.images != 1) fail_usage("--images goes with --random");
  if (!(o.tolerance >= 0)) fail_usage("--tolerance must be a non-negative number");
  apply_threads(o.threads);
  Model m = read_model(o.input);
  if (!m.program) {
    if (!m.aie2_dropped.empty()) fail("'{}' has no usable program ({}): run 'bsp codegen' again", o.input, m.aie2_dropped);
    fail("'{}' has no program: run 'bsp schedule' and 'bsp codegen' first", o.input);
  }
  const aie2::ProgramFile& pf = *m.program;
  aie2::check_program_fits(m, pf.program);
  if (pf.const_image.empty() && pf.program.ddr_const_bytes > 0)
    fail("the program of '{}' was generated without its weight image (--no-image): run 'bsp codegen' again", o.input);
  const bool int8 = pf.program.dtype == DType::Int8;
  if (int8 && !(m.compact && m.compact->int8)) fail("the int8 program needs the model's int8 weights (/compact)");
  Tensor x = input_images(m, o);
  Progress pr{(o.progress || isatty(STDERR_FILENO)) && !quiet()};
  aie2::SimRun r = aie2::simulate(pf.program, pf.const_image, x, m, show_progress, &pr);
  const aie2::SimCheck c = aie2::check_output(pf.program, m, x, r.output, o.tolerance);
  const int64_t per = static_cast<int64_t>(r.output.size()) / x.dim(0);
  double sim_s = 0;
  for (const auto& st : r.stages) sim_s += st.seconds;
  if (o.json) {
    Json j = Json::object();
    j["target"] = pf.program.hw.name;
    j["dtype"] = dtype_name(pf.program.dtype);
    j["images"] = x.dim(0);
    j["stages"] = static_cast<int64_t>(pf.program.stages.size());
    j["instructions"] = r.executed;
    j["simulated_s"] = sim_s;
    j["outputs_per_image"] = per;
    j["max_abs_diff"] = c.max_abs_diff;
    j["max_abs_reference"] = c.max_abs_reference;
    j["tolerance"] = c.tolerance;
    j["exact"] = c.max_abs_diff == 0;
    j["match"] = c.match;
    print_json(j);
  } else {
    std::printf("sim: %s on %s, %ld image%s, %zu stages, %s instructions executed, simulated time %.3f ms\n",
                dtype_name(pf.program.dtype), pf.program.hw.name.c_str(), static_cast<long>(x.dim(0)),
                x.dim(0) > 1 ? "s" : "", pf.program.stages.size(), with_commas(r.executed).c_str(), sim_s * 1e3);
    if (int8)
      std::printf("output: %ld values per image; %s\n", static_cast<long>(per),
                  c.match ? "bit-exact with the int8 reference" : "differs from the int8 reference");
    else
      std::printf("output: %ld values per image; max |diff| %.3g, max |reference| %.4g, tolerance %.3g: %s\n",
                  static_cast<long>(per), c.max_abs_diff, c.max_abs_reference, c.tolerance, c.match ? "match" : "MISMATCH");
  }
  std::fflush(stdout);
  if (!c.match)
    fail("output differs from the reference: value {} of image {} is {}, the reference {} (max |diff| {:.3g}, "
         "tolerance {:.3g})",
         c.worst % per, c.worst / per, c.got, c.want, c.max_abs_diff, c.tolerance);
}
}  // namespace

Runner setup_sim(CLI::App& sub) {
  auto o = std::make_shared<SimCliOptions>();
  sub.add_option("model", o->input, "model file with a program ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--random", o->seed, "random N(0, 1) input images from this seed (the default, seed 0)")
      ->type_name("SEED");
  sub.add_option("--input", o->input_file, "input images: a float32 .npy file of [N, H, W, C] or [H, W, C]")
      ->type_name("FILE");
  sub.add_option("--images", o->images, "with --random: how many images (default 1)")->type_name("N");
  sub.add_option("--tolerance", o->tolerance,
                 "fp32: allowed |sim - reference| as a fraction of the largest reference output (default 1e-4); "
                 "int8 must be bit-exact")
      ->type_name("X");
  sub.add_flag("--json", o->json, "print the result as JSON (schema in bsp-sim(1))");
  sub.add_flag("--progress", o->progress, "show progress on stderr even when it is not a terminal");
  add_threads_option(sub, o->threads);
  return [o] { run_sim(*o); };
}

}  // namespace bsp::cli
