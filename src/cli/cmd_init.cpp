// bsp init: create a model from the built-in zoo (man/bsp-init.1).
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "zoo/zoo.hpp"

namespace bsp::cli {

namespace {
struct InitOptions {
  std::string arch;
  uint64_t seed = 0;
  int64_t classes = 0;  // 0: the architecture's default
  std::string output;
  bool list = false;
};

void run_init(const InitOptions& o) {
  if (o.list) {
    for (const auto& a : architectures()) std::printf("%-14s %s\n", a.name, a.summary);
    return;
  }
  if (o.arch.empty()) fail_usage("--arch is required (see --list)");
  if (o.output.empty()) fail_usage("no output file: give -o FILE");
  const ArchInfo& arch = find_arch(o.arch);
  if (o.classes < 0) fail_usage("--classes must be at least 1");
  Model m = arch.build(o.classes > 0 ? o.classes : arch.default_classes);
  init_weights(m, o.seed);
  write_model(m, o.output);
}
}  // namespace

Runner setup_init(CLI::App& sub) {
  auto o = std::make_shared<InitOptions>();
  sub.add_option("--arch", o->arch, "architecture: resnet50, inception_v3, vgg16, fmnist-cnn, fmnist-resnet")
      ->type_name("NAME");
  sub.add_option("--seed", o->seed, "seed of the He-normal weight initialisation (default 0)")->type_name("N");
  sub.add_option("--classes", o->classes, "outputs of the classifier (default: 1000 ImageNet, 10 Fashion-MNIST)")
      ->type_name("K")
      ->check(CLI::PositiveNumber);
  sub.add_option("-o,--output", o->output, "output model file ('-' for stdout)")->type_name("FILE");
  add_compress_option(sub);
  sub.add_flag("--list", o->list, "list the architectures and exit");
  return [o] { run_init(*o); };
}

}  // namespace bsp::cli
