#include "aie2/sparse24.hpp"

#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace bsp::aie2 {

int64_t pack_pair(const int8_t* dec, uint8_t* out) {
  for (int g = 0; g < 2; ++g) {
    const int8_t* src = dec + 64 * g;
    uint8_t* grp = out + kGroupBytes * g;
    uint64_t mask = 0;
    int n = 0;
    for (int q = 0; q < 64; q += 4) {
      int nz = 0;
      for (int j = 0; j < 4; ++j) nz += src[q + j] != 0;
      if (nz > 2) return 64 * g + q;
      // The nonzeros, then the lowest unused positions: exactly 2 per group.
      int kept = 0;
      for (int j = 0; j < 4; ++j)
        if (src[q + j] != 0) mask |= uint64_t{1} << (q + j), ++kept;
      for (int j = 0; j < 4 && kept < 2; ++j)
        if (!(mask >> (q + j) & 1)) mask |= uint64_t{1} << (q + j), ++kept;
      for (int j = 0; j < 4; ++j)
        if (mask >> (q + j) & 1) grp[8 + n++] = static_cast<uint8_t>(src[q + j]);
    }
    for (int b = 0; b < 8; ++b) grp[b] = static_cast<uint8_t>(mask >> (8 * b));
  }
  return -1;
}

bool unpack_pair(const uint8_t* in, int8_t* dec, std::string& why) {
  for (int g = 0; g < 2; ++g) {
    const uint8_t* grp = in + kGroupBytes * g;
    uint64_t mask = 0;
    for (int b = 0; b < 8; ++b) mask |= static_cast<uint64_t>(grp[b]) << (8 * b);
    for (int q = 0; q < 64; q += 4)
      if (const int bits = std::popcount((mask >> q) & 0xf); bits != 2) {
        why = fmt::format("group {}: mask nibble {} has {} bits set (2:4 needs exactly 2)", g, q / 4, bits);
        return false;
      }
    int n = 0;
    for (int i = 0; i < 64; ++i) dec[64 * g + i] = (mask >> i & 1) ? static_cast<int8_t>(grp[8 + n++]) : int8_t{0};
  }
  return true;
}

}  // namespace bsp::aie2
