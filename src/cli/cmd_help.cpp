// bsp help: show a subcommand's manual page (man/bsp-help.1).
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/install_paths.hpp"

extern char** environ;

namespace bsp::cli {

namespace {

struct Page {
  std::string name;  // "bsp-prune"
  int section = 1;
};

// Runs `man -l FILE`; returns false when man cannot be started.
bool run_man(const std::string& file) {
  std::fflush(stdout);
  const char* args[] = {"man", "-l", file.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "man", nullptr, nullptr, const_cast<char* const*>(args), environ) != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail("cannot wait for 'man': {}", errno_message(errno));
  // posix_spawnp may report a missing program only through the child's 127.
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return false;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("'man -l {}' failed", file);
  return true;
}

void run_help(CLI::App& self, const std::string& topic) {
  CLI::App& app = *self.get_parent();
  CLI::App* sub = nullptr;
  Page page{"bsp", 1};
  if (!topic.empty()) {
    for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
      if (s->get_name() == topic) sub = s;
    if (sub)
      page = {"bsp-" + topic, 1};
    else if (topic == "format" || topic == "aie2")
      page = {"bsp-" + topic, 5};
    else if (topic == "isa")
      page = {"bsp-isa", 7};
    else
      fail_usage("unknown topic '{}' (a subcommand, or format, aie2, isa)", topic);
  }
  const std::string file = find_man_page(page.name, page.section);
  if (!file.empty() && run_man(file)) return;
  // No page or no man: the option summary, where there is one.
  const std::string why = file.empty() ? "is not installed" : "cannot be shown ('man' is missing)";
  if (page.section != 1) fail("the page {}({}) {}", page.name, page.section, why);
  std::fprintf(stderr, "bsp help: the page %s(1) %s; here is --help\n", page.name.c_str(), why.c_str());
  std::fputs(sub ? sub->help("bsp").c_str() : app.help().c_str(), stdout);
}

}  // namespace

Runner setup_help(CLI::App& sub) {
  auto topic = std::make_shared<std::string>();
  sub.add_option("topic", *topic, "a subcommand, or format, aie2, isa (default: the overview, bsp(1))")
      ->type_name("TOPIC");
  return [&sub, topic] { run_help(sub, *topic); };
}

}  // namespace bsp::cli
