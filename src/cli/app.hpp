#pragma once

namespace bsp::cli {

// Parses the command line, runs the chosen subcommand and maps every failure
// to "bsp NAME: message" on stderr and the documented exit code.
int run(int argc, char** argv);

}  // namespace bsp::cli
