// The compressed form of the AIE-ML structured-sparse B operand as bsp's
// weight chunks hold it (man/bsp-isa.7, SPARSE OPERAND). One pair is the
// 16 x 8 int8 B tile of one sparse 4x16x8 multiply (aie_api mmul<4,16,8> on
// AIE-ML), stored column-major: decompressed byte 16 * o + k is output
// channel o (0-7) at reduction index k (0-15). It is two 512-bit chunks
// (o 0-3, then o 4-7), each 8 bytes of mask (a little-endian uint64, bit i
// for decompressed byte i of the chunk, 1 = the byte is stored) followed by
// 32 data bytes, the stored bytes in increasing i: UG1603 "Sparse Matrix
// Multiplication" (2024.1: 512-bit chunks, 64-bit mask, a mask bit per
// byte) and aie_api aie_doc.hpp "Sparse Data Format" (bit order, the data
// after the mask, 32-bit aligned masks). bsp stores exactly 2 bytes of every
// aligned group of 4 (filling a group of fewer nonzeros with zeros at its
// lowest unused positions), which every version of the documents accepts.
#pragma once

#include <cstdint>
#include <string>

namespace bsp::aie2 {

inline constexpr int64_t kPairElems = 128;   // 16 x 8 decompressed
inline constexpr int64_t kGroupBytes = 40;   // 8 mask + 32 data

// Compresses a decompressed pair. Returns -1 on success, else the first
// decompressed index of a group of 4 with more than 2 nonzeros.
int64_t pack_pair(const int8_t* dec, uint8_t* out);

// Decompresses and checks a stored pair: every aligned nibble of each mask
// has exactly 2 bits set. On failure returns false with `why` naming the
// group and nibble.
bool unpack_pair(const uint8_t* in, int8_t* dec, std::string& why);

}  // namespace bsp::aie2
