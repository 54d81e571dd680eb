// bsp codegen: generate the AIE2 program of a scheduled model (man/bsp-codegen.1).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "aie2/codegen.hpp"
#include "aie2/store.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "core/safe_file.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::cli {

namespace {
struct CodegenCliOptions {
  std::string input;
  OutputOptions out;
  std::string asm_path;
  bool no_image = false;
};

void write_text(const std::string& path, const std::string& text) {
  OutputFile f(path);
  FILE* fp = std::fopen(f.temp_path().c_str(), "wb");
  if (!fp) fail("cannot write '{}': {}", path, errno_message(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), fp) == text.size();
  if (std::fclose(fp) != 0 || !ok) fail("cannot write '{}': {}", path, errno_message(errno));
  f.commit();
}

void run_codegen(const CodegenCliOptions& o) {
  const std::string out = resolve_output(o.input, o.out);
  if (o.asm_path == "-" && out == "-") fail_usage("--asm - and -o - both write on stdout");
  Model m = read_model(o.input);
  if (!m.schedule) {
    if (!m.aie2_dropped.empty()) fail("'{}' has no usable schedule ({}): run 'bsp schedule' again", o.input, m.aie2_dropped);
    fail("'{}' has no schedule: run 'bsp schedule' first", o.input);
  }
  const aie2::Schedule& s = *m.schedule;
  auto pf = std::make_shared<aie2::ProgramFile>();
  pf->program = aie2::generate_program(s);
  pf->source_hash = s.source_hash;
  if (!o.no_image) {
    pf->const_image = aie2::build_const_image(s, m, &pf->program);
  } else if (s.dtype == DType::Int8) {
    if (m.compact && m.compact->int8) aie2::build_const_image(s, m, &pf->program);  // the kernel constants
  }
  if (!o.asm_path.empty()) write_text(o.asm_path, aie2::program_asm(pf->program));
  set_program(m, pf);
  write_model(m, out);
}
}  // namespace

Runner setup_codegen(CLI::App& sub) {
  auto o = std::make_shared<CodegenCliOptions>();
  sub.add_option("model", o->input, "scheduled model file ('-' for stdin)")->required()->type_name("MODEL");
  add_output_options(sub, o->out);
  sub.add_option("--asm", o->asm_path, "also write the program as readable assembly ('-' for stdout)")->type_name("FILE");
  sub.add_flag("--no-image", o->no_image,
               "leave out the DDR image of the weights (a program for timing only; bsp sim refuses it)");
  return [o] { run_codegen(*o); };
}

}  // namespace bsp::cli
