#include "cli/completion.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "aie2/hardware.hpp"
#include "zoo/zoo.hpp"

namespace bsp::cli {

namespace {

using Values = std::vector<std::string>;

Values archs() {
  Values v;
  for (const auto& a : architectures()) v.push_back(a.name);
  return v;
}

// The shipped hardware descriptions (data/aie2/NAME.json) and the mesh form.
Values targets() {
  Values v = {"aie2:2x2", "aie2:4x4", "aie2:8x8"};
  try {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(aie2::data_dir() + "/aie2"))
      if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    v.insert(v.end(), names.begin(), names.end());
  } catch (const std::exception&) {
    // No data directory: the mesh forms still work.
  }
  return v;
}

Values with(Values v, const Values& more) {
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

const char* const kFiles = "__files__";

// The values of options that take one of a known set. `sub` "*" is every
// subcommand that has the option. Each entry must name an existing option:
// `bsp __complete --check` (run by tests/e2e/test_help.sh) checks that.
struct ValueRule {
  const char* sub;
  const char* option;
  std::function<Values()> values;
};

const std::vector<ValueRule>& value_rules() {
  static const std::vector<ValueRule> rules = {
      {"init", "--arch", archs},
      {"prune", "--pattern",
       [] {
         return Values{"block:8x8", "block:4x4", "block:16x16", "nm:2:4", "nm:2:8", "nm:1:4",
                       "tw:128",    "tvw:128",   "unstructured", "channel", "block:8x8+nm:2:4", "tw:128+nm:2:4"};
       }},
      {"finetune", "--pattern", [] { return Values{"block:8x8", "nm:2:4", "nm:2:8", "tw:128", "unstructured"}; }},
      {"explore", "--pattern", [] { return Values{"block:8x8", "nm:2:4", "nm:2:8", "tw:128", "unstructured"}; }},
      {"prune", "--criterion", [] { return Values{"l2", "l1", "variance"}; }},
      {"prune", "--scope", [] { return Values{"layer", "global"}; }},
      {"finetune", "--schedule", [] { return Values{"onecycle", "cosine", "step", "constant"}; }},
      {"finetune", "--bn-stats", [] { return Values{"sync", "local"}; }},
      {"*", "--data", [] { return Values{"fashion-mnist", kFiles}; }},
      {"compact", "--calib", [] { return Values{"fashion-mnist", kFiles}; }},
      {"compact", "--format", [] { return Values{"auto", "bsr", "nm", "tw", "dense"}; }},
      {"compact", "--dtype", [] { return Values{"fp32", "bf16", "int8"}; }},
      {"schedule", "--dtype", [] { return Values{"int8", "bf16", "fp32"}; }},
      {"estimate", "--dtype", [] { return Values{"int8", "bf16", "fp32"}; }},
      {"export", "--dtype", [] { return Values{"fp32", "int8"}; }},
      {"bench", "--baseline", [] { return Values{"blas", "dense"}; }},
      {"schedule", "--target", [] { return with(targets(), {kFiles}); }},
      {"estimate", "--target", [] { return with(targets(), {kFiles}); }},
      {"explore", "--target", [] { return with(targets(), {"none", kFiles}); }},
      {"estimate", "--model", [] { return Values{"default", "paper"}; }},
      {"estimate", "--mapping", [] { return Values{"bsp", "paper"}; }},
      {"estimate", "--compare", [] { return Values{"dense"}; }},
  };
  return rules;
}

// The pages `bsp help` shows besides the subcommands' (bsp-NAME.5/.7).
const Values kTopicPages = {"format", "aie2", "isa"};

Values subcommand_names(const CLI::App& app) {
  Values v;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) v.push_back(s->get_name());
  return v;
}

const CLI::Option* find_option(const CLI::App& sub, const std::string& name) {
  for (const CLI::Option* o : sub.get_options())
    if (!o->get_positional() && o->check_name(name)) return o;
  return nullptr;
}

Values option_values(const CLI::App& sub, const CLI::Option& opt) {
  for (const ValueRule& r : value_rules()) {
    if (std::string(r.sub) != "*" && sub.get_name() != r.sub) continue;
    if (opt.check_name(r.option)) return r.values();
  }
  return {kFiles};
}

Values option_names(const CLI::App& sub) {
  Values v;
  for (const CLI::Option* o : sub.get_options()) {
    if (o->get_positional()) continue;
    for (const std::string& l : o->get_lnames()) v.push_back("--" + l);
    for (const std::string& s : o->get_snames()) v.push_back("-" + s);
  }
  return v;
}

void print_matching(const Values& values, const std::string& cur, const std::string& prefix = "") {
  for (const std::string& v : values)
    if (v == kFiles)
      std::printf("%s\n", kFiles);
    else if (v.compare(0, cur.size(), cur) == 0)
      std::printf("%s%s\n", prefix.c_str(), v.c_str());
}

// Every rule names an existing subcommand and option.
int check_rules(CLI::App& app) {
  int bad = 0;
  for (const ValueRule& r : value_rules()) {
    bool found = false;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
      if ((std::string(r.sub) == "*" || s->get_name() == r.sub) && find_option(*s, r.option)) found = true;
    if (!found) {
      std::fprintf(stderr, "bsp: completion rule for '%s %s' names no option\n", r.sub, r.option);
      ++bad;
    }
  }
  return bad ? 1 : 0;
}

}  // namespace

int complete(CLI::App& app, int argc, char** argv) {
  if (argc == 3 && std::string(argv[2]) == "--check") return check_rules(app);
  if (argc < 4) {
    std::fprintf(stderr, "bsp: usage: bsp __complete CWORD WORD...\n");
    return 2;
  }
  const int cword = std::atoi(argv[2]);
  const Values w(argv + 3, argv + argc);  // w[0] is the command's own name
  if (cword < 1 || cword > static_cast<int>(w.size())) return 0;
  std::string cur = cword < static_cast<int>(w.size()) ? w[static_cast<size_t>(cword)] : "";
  std::string prev = w[static_cast<size_t>(cword - 1)];
  std::string prefix;  // printed before each value of "--opt=value" given as one word
  // bash splits "--opt=value" at '=' (COMP_WORDBREAKS): "--opt" "=" "value".
  if (cur == "=") {
    cur.clear();
  } else if (prev == "=" && cword >= 2) {
    prev = w[static_cast<size_t>(cword - 2)];
  } else if (cur.rfind("--", 0) == 0 && cur.find('=') != std::string::npos) {
    const size_t eq = cur.find('=');
    prev = cur.substr(0, eq);
    prefix = cur.substr(0, eq + 1);
    cur = cur.substr(eq + 1);
  }

  CLI::App* sub = nullptr;
  if (w.size() > 1 && cword > 1)
    for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
      if (s->get_name() == w[1]) sub = s;
  if (!sub) {
    if (cword == 1) print_matching(cur.rfind('-', 0) == 0 ? Values{"--help", "--version"} : subcommand_names(app), cur);
    return 0;
  }
  if (cword >= 2 && (!prefix.empty() || cword > 2 || prev != sub->get_name())) {
    const CLI::Option* opt = find_option(*sub, prev);
    if (opt && opt->get_type_size_max() > 0) {
      print_matching(option_values(*sub, *opt), cur, prefix);
      return 0;
    }
  }
  if (cur.rfind('-', 0) == 0) {
    print_matching(option_names(*sub), cur);
  } else if (sub->get_name() == "help") {
    print_matching(with(subcommand_names(app), kTopicPages), cur);
  } else {
    std::printf("%s\n", kFiles);
  }
  return 0;
}

}  // namespace bsp::cli
