// What the subcommands share: reading and writing model arguments, the
// output options, the command line recorded in a file's history, printing.
#pragma once

#include <array>
#include <functional>
#include <string>

#include "core/json.hpp"
#include "core/model.hpp"

namespace CLI {
class App;
class Option;
}

namespace bsp::cli {

void set_command_line(int argc, char** argv);
// The argument vector as main() received it (for a subcommand that must
// re-execute itself with a changed environment).
char** raw_argv();
// The command line as typed ("bsp prune m.h5 --density 0.5 -o p.h5"), shell-quoted.
const std::string& command_line();

// -q/--quiet and -v/--verbose, which app.cpp gives every subcommand; the
// convention is in bsp(1), COMMON CONVENTIONS. Quiet: only the results asked
// for (output files, tables, --json), warnings and errors; no reports,
// summaries, notes or progress. Verbose: also one line on stderr for each
// model file read and written (size, seconds).
void add_verbosity_options(CLI::App& sub);
bool quiet();
bool verbose();
// "bsp SUB: " + msg on stderr, only with --verbose.
void verbose_note(const std::string& msg);
// The subcommand being run, for those lines' prefix (set by app.cpp).
void set_subcommand_name(const std::string& name);

// -o/--output and --in-place for a stage that turns one model into another.
struct OutputOptions {
  std::string path;
  bool in_place = false;
};
// Also adds --compress (add_compress_option).
void add_output_options(CLI::App& sub, OutputOptions& o);
// --compress for a subcommand that writes a model: write_model then stores
// every dataset chunked, shuffled and deflated (kCompressLevel).
CLI::Option* add_compress_option(CLI::App& sub);
constexpr int kCompressLevel = 4;
// The output path for `input`: refuses an output that is the input unless
// --in-place (which alone means "write back to the input").
std::string resolve_output(const std::string& input, const OutputOptions& o);

// --threads N for a subcommand that computes; 0 (the default) means every
// core. apply_threads() sets OpenMP's thread count from it.
void add_threads_option(CLI::App& sub, int& threads);
void apply_threads(int threads);

// Reads a model argument: a path, or "-" for stdin.
Model read_model(const std::string& arg);
// Appends this command line to the model's history and writes it atomically
// to `out` (a path, or "-" for stdout).
void write_model(Model& m, const std::string& out);
// The same, calling `extra` on the finished temporary file before it is
// renamed into place (to add groups such as a checkpoint's /train).
void write_model(Model& m, const std::string& out, const std::function<void(const std::string& temp)>& extra);

// One line on stderr ("bsp SUB: note: ...") when m's dense weights were
// rebuilt from its compact form (a file written by bsp strip), saying from
// which form and how exactly; `always`: also when the rebuild is exact (fp32).
void note_rebuilt_weights(const Model& m, const char* sub, bool always);

// "25,557,032"
std::string with_commas(int64_t v);
// Prints JSON on stdout, pretty, with a final newline.
void print_json(const Json& j);

// An activation block "BHxBWxBC", each 1 to limits::kMaxDim (the value of
// `option`, named in the usage error).
std::array<int64_t, 3> parse_act_block(const std::string& s, const char* option);

}  // namespace bsp::cli
