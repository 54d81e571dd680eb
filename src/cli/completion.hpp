// Shell completion answered by bsp itself. The installed bash script
// (data/completion/bsp) is a thin shim: on TAB it runs
//   bsp __complete CWORD WORD0 WORD1 ...
// (bash's COMP_CWORD and COMP_WORDS) and offers the lines bsp prints. bsp
// answers from the same CLI11 definitions it parses with, so subcommands and
// options cannot drift from the completion; the value lists of options that
// take one of a known set (architectures, patterns, targets, dtypes, ...)
// are in completion.cpp, and `bsp __complete --check` fails when one names
// an option that no longer exists. `__complete` is not a subcommand: it is
// not listed and takes no options.
//
// Output: one candidate per line, already filtered by the word being
// completed; a line "__files__" asks the shim to add file names.
#pragma once

namespace CLI {
class App;
}

namespace bsp::cli {

// argv[1] is "__complete". Prints the candidates; returns the exit code.
int complete(CLI::App& app, int argc, char** argv);

}  // namespace bsp::cli
