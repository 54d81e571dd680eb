// The recipe for a subcommand (after git's builtin.h): one file per
// subcommand, cmd_NAME.cpp, defines `setup_NAME`, which declares the
// subcommand's options on the CLI11 app it is given and returns the function
// that runs it once the command line is parsed. commands.cpp lists them all
// in one table; adding a subcommand touches that table, its own file, its man
// page (man/bsp-NAME.1) and its test (tests/e2e/test_NAME.sh).
//
// A runner reports failure by throwing bsp::Error (exit 1) or
// bsp::UsageError (exit 2); app.cpp prints "bsp NAME: message" on stderr.
#pragma once

#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace bsp::cli {

using Runner = std::function<void()>;

struct Command {
  const char* name;
  const char* summary;  // one line, shown by `bsp --help`
  Runner (*setup)(CLI::App& sub);
};

const std::vector<Command>& commands();

Runner setup_init(CLI::App& sub);
Runner setup_import(CLI::App& sub);
Runner setup_export(CLI::App& sub);
Runner setup_info(CLI::App& sub);
Runner setup_compact(CLI::App& sub);
Runner setup_strip(CLI::App& sub);
Runner setup_bench(CLI::App& sub);
Runner setup_prune(CLI::App& sub);
Runner setup_finetune(CLI::App& sub);
Runner setup_eval(CLI::App& sub);
Runner setup_explore(CLI::App& sub);
Runner setup_schedule(CLI::App& sub);
Runner setup_codegen(CLI::App& sub);
Runner setup_sim(CLI::App& sub);
Runner setup_estimate(CLI::App& sub);
Runner setup_plot(CLI::App& sub);
Runner setup_help(CLI::App& sub);

}  // namespace bsp::cli
