#include "cli/app.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "cli/completion.hpp"
#include "core/allocator.hpp"
#include "core/error.hpp"
#include "core/safe_file.hpp"

namespace bsp::cli {

namespace {

std::string lower_first(std::string s) {
  if (!s.empty() && !(s.size() > 1 && std::isupper(static_cast<unsigned char>(s[1]))))
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// The subcommand named on the command line, for the error prefix.
std::string subcommand_in(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!a.empty() && a[0] == '-') continue;
    for (const auto& c : commands())
      if (a == c.name) return a;
    return "";
  }
  return "";
}

std::string prefix(const std::string& sub) { return sub.empty() ? "bsp" : "bsp " + sub; }

// An error is one line on stderr, whatever the file it is about holds: the
// names and strings a message quotes from it (a node named "a\nb", an op of a
// megabyte) have their control characters escaped and the line is cut short.
std::string one_line(std::string_view msg) {
  constexpr size_t kMax = 4096;
  std::string out;
  out.reserve(std::min(msg.size(), kMax) + 16);
  for (size_t i = 0; i < msg.size(); ++i) {
    if (out.size() >= kMax) {
      out += fmt::format(" ... ({} more bytes)", msg.size() - i);
      break;
    }
    const auto c = static_cast<unsigned char>(msg[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

int run(int argc, char** argv) {
  keep_large_allocations();
  install_cleanup_handlers();
  set_command_line(argc, argv);

  CLI::App app{"bsp: structured weight sparsity for convolutional networks, from pruning to an AIE2 program",
               "bsp"};
  app.set_version_flag("--version", std::string("bsp ") + BSP_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'bsp SUBCOMMAND --help' for a subcommand's options; 'man bsp' for the whole pipeline.");

  Runner chosen;
  for (const auto& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    Runner r = c.setup(*sub);
    if (std::string_view(c.name) != "help") add_verbosity_options(*sub);
    sub->callback([r, &chosen] { chosen = r; });
  }

  // Shell completion's hidden entry point (cli/completion.hpp).
  if (argc >= 2 && std::string_view(argv[1]) == "__complete") return complete(app, argc, argv);

  const std::string sub = subcommand_in(argc, argv);
  set_subcommand_name(sub);
  try {
    // An unknown first word is a subcommand the user meant.
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (!a.empty() && a[0] == '-') continue;
      if (sub.empty()) throw UsageError("unknown subcommand '" + a + "' (see 'bsp --help')");
      break;
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app.exit(e);
    } catch (const CLI::RequiredError& e) {
      if (sub.empty()) throw UsageError("a subcommand is required (see 'bsp --help')");
      throw UsageError(lower_first(e.what()));
    } catch (const CLI::ParseError& e) {
      throw UsageError(lower_first(e.what()));
    }
    if (chosen) chosen();
    std::fflush(stdout);
    return kExitOk;
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s\n", prefix(sub).c_str(), one_line(e.what()).c_str());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", prefix(sub).c_str());
    return kExitRuntime;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", prefix(sub).c_str(), one_line(e.what()).c_str());
    return kExitRuntime;
  }
}

}  // namespace bsp::cli
