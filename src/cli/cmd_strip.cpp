// bsp strip: write a compacted model without the dense weights its compact
// form holds, the deployable file (man/bsp-strip.1; bsp-format(5), DROPPED
// DENSE WEIGHTS). A command of its own rather than a bsp compact option: it
// is lossless on any compacted file, also after schedule and codegen,
// without compacting (for int8: calibrating) again.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"

namespace bsp::cli {

namespace {
struct StripOptions {
  std::string input;
  OutputOptions out;
};

void run_strip(const StripOptions& o) {
  const std::string out = resolve_output(o.input, o.out);
  Model m = read_model(o.input);
  if (!m.compact)
    fail("'{}' has no compact weights to keep{}: run 'bsp compact' first", o.input,
         m.compact_dropped.empty() ? "" : " (" + m.compact_dropped + ")");
  size_t held = 0;
  for (const auto& [name, l] : m.compact->layers) held += compact::holds_values(l);
  if (held == 0 && !quiet())
    std::fprintf(stderr, "bsp strip: note: no layer's compact form holds its weights (fp32 dense layers are the "
                         "graph's): nothing to drop\n");
  m.drop_dense = true;
  write_model(m, out);
}
}  // namespace

Runner setup_strip(CLI::App& sub) {
  auto o = std::make_shared<StripOptions>();
  sub.add_option("model", o->input, "compacted model file ('-' for stdin)")->required()->type_name("MODEL");
  add_output_options(sub, o->out);
  return [o] { run_strip(*o); };
}

}  // namespace bsp::cli
