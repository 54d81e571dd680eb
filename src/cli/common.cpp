#include "cli/common.hpp"

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>

#include <omp.h>

#include <CLI/CLI.hpp>

#include <optional>

#include "core/checked.hpp"
#include "core/h5.hpp"
#include "core/safe_file.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::cli {

namespace {
std::string g_command_line;
bool g_compress = false;  // --compress (add_compress_option)
char** g_argv = nullptr;
std::string g_subcommand;
bool g_quiet = false, g_verbose = false;

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string shell_quote(const std::string& a) {
  if (!a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                        std::string::npos)
    return a;
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

char** raw_argv() { return g_argv; }

void set_command_line(int argc, char** argv) {
  g_argv = argv;
  g_command_line = "bsp";
  for (int i = 1; i < argc; ++i) g_command_line += " " + shell_quote(argv[i]);
}

const std::string& command_line() { return g_command_line; }

void add_verbosity_options(CLI::App& sub) {
  CLI::Option* q = sub.add_flag("-q,--quiet", g_quiet, "print only the results asked for, warnings and errors");
  sub.add_flag("-v,--verbose", g_verbose, "also report each model file read and written (size, seconds)")
      ->excludes(q);
}

bool quiet() { return g_quiet; }
bool verbose() { return g_verbose; }
void set_subcommand_name(const std::string& name) { g_subcommand = name; }

void verbose_note(const std::string& msg) {
  if (!g_verbose) return;
  std::fprintf(stderr, "bsp %s: %s\n", g_subcommand.c_str(), msg.c_str());
  std::fflush(stderr);
}

void add_output_options(CLI::App& sub, OutputOptions& o) {
  sub.add_option("-o,--output", o.path, "output model file ('-' for stdout)")->type_name("FILE");
  sub.add_flag("--in-place", o.in_place, "allow the output to be the input (alone: overwrite the input, atomically)");
  add_compress_option(sub);
}

CLI::Option* add_compress_option(CLI::App& sub) {
  return sub.add_flag("--compress", g_compress, "store the output's datasets compressed (HDF5 shuffle + deflate)");
}

std::string resolve_output(const std::string& input, const OutputOptions& o) {
  if (o.path.empty()) {
    if (!o.in_place) fail_usage("no output file: give -o FILE (or --in-place to replace the input)");
    if (input == "-") fail_usage("--in-place needs an input file, not stdin");
    return input;
  }
  // stdin and stdout are never the same file.
  if (!o.in_place && o.path != "-" && (o.path == input || same_file(o.path, input)))
    fail_usage("output '{}' is the input file: use --in-place to overwrite it", o.path);
  return o.path;
}

void add_threads_option(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, "worker threads (default: every core)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

Model read_model(const std::string& arg) {
  const auto t0 = std::chrono::steady_clock::now();
  InputFile in(arg);
  Model m = load_model(in.path(), in.display());
  if (g_verbose)
    verbose_note(fmt::format("read '{}': {} bytes, {:.3f} s", in.display(), with_commas(file_bytes(in.path())),
                             seconds_since(t0)));
  return m;
}

void write_model(Model& m, const std::string& out) { write_model(m, out, {}); }

void write_model(Model& m, const std::string& out, const std::function<void(const std::string& temp)>& extra) {
  const auto t0 = std::chrono::steady_clock::now();
  m.history.push_back(command_line());
  OutputFile f(out);
  try {
    SaveOptions opt;
    opt.compress_level = g_compress ? kCompressLevel : 0;
    save_model(m, f.temp_path(), opt);
    // Groups added to the finished file (a checkpoint's /train) are compressed alike.
    std::optional<h5::CompressScope> scope;
    if (g_compress) scope.emplace(kCompressLevel);
    if (extra) extra(f.temp_path());
  } catch (const Error& e) {
    throw Error(fmt::format("cannot write '{}': {}", out == "-" ? "<stdout>" : out, e.what()), e.exit_code());
  }
  const int64_t bytes = g_verbose ? file_bytes(f.temp_path()) : 0;
  f.commit();
  if (g_verbose)
    verbose_note(fmt::format("wrote '{}': {} bytes, {:.3f} s", out == "-" ? "<stdout>" : out, with_commas(bytes),
                             seconds_since(t0)));
}

void note_rebuilt_weights(const Model& m, const char* sub, bool always) {
  if (g_quiet || !m.rebuilt || m.rebuilt->nodes.empty()) return;
  const char* how = m.rebuilt->dtype == DType::FP32   ? "exactly the weights they were compacted from"
                    : m.rebuilt->dtype == DType::BF16 ? "the bf16 weights widened"
                                                      : "the int8 weights dequantised, folded batchnorms unfolded";
  if (!always && m.rebuilt->dtype == DType::FP32) return;
  std::fprintf(stderr, "bsp %s: note: the file has no dense weights (bsp strip): %zu layers' weights rebuilt from its %s compact form (%s)\n",
               sub, m.rebuilt->nodes.size(), dtype_name(m.rebuilt->dtype), how);
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return v < 0 ? "-" + out : out;
}

void print_json(const Json& j) {
  std::string s = j.dump(2);
  s += '\n';
  std::fwrite(s.data(), 1, s.size(), stdout);
}

std::array<int64_t, 3> parse_act_block(const std::string& s, const char* option) {
  std::array<int64_t, 3> b{};
  size_t pos = 0;
  for (size_t k = 0; k < 3; ++k) {
    const size_t end = k < 2 ? s.find('x', pos) : s.size();
    if (end == std::string::npos) fail_usage("{} '{}' is not BHxBWxBC (e.g. 1x8x8)", option, s);
    const std::string part = s.substr(pos, end - pos);
    char* tail = nullptr;
    errno = 0;
    const long long v = part.empty() || part[0] == '-' || part[0] == '+' ? -1 : std::strtoll(part.c_str(), &tail, 10);
    if (v < 1 || errno || (tail && *tail) || v > limits::kMaxDim)
      fail_usage("{} '{}' is not BHxBWxBC with each size 1 to {} (e.g. 1x8x8)", option, s, limits::kMaxDim);
    b[k] = v;
    pos = end + 1;
  }
  return b;
}

}  // namespace bsp::cli
