// libFuzzer target: the JSON parser and the hardware description reader, as
// bsp reads the "hardware" attribute of a file's /schedule and /program
// groups (and --target FILE.json). A clean refusal is a bsp::Error.
#include <string>

#include "aie2/hardware.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const bsp::Json j = bsp::Json::parse(text);
    volatile size_t n = j.dump().size();
    (void)n;
    const bsp::aie2::Hardware hw = bsp::aie2::hardware_from_json(j, "/program");
    volatile int64_t c = hw.cores();
    (void)c;
  } catch (const bsp::Error&) {
  }
  return 0;
}
