// Decoding one image file (JPEG with libjpeg-turbo, PNG with libpng) into
// 8-bit pixels, and the channel conversion to what a model takes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bsp {

// 8-bit pixels, HWC: px[(y * w + x) * c + ch]; c is 1 (gray) or 3 (RGB).
struct Image8 {
  int64_t h = 0, w = 0, c = 0;
  std::vector<uint8_t> px;
};

// Decoded images larger than this many pixels are refused (a 30-byte PNG
// header can claim 65536 x 65536 x 4 bytes).
constexpr int64_t kMaxDecodedPixels = int64_t{1} << 28;

// Decodes `path`, chosen by its first bytes (not its name). Gray stays gray
// (1 channel); colour, palette and CMYK become RGB; alpha is dropped and
// 16-bit samples keep their high byte (as PIL's convert("RGB") does).
// Returns false with `why` set ("not a JPEG or PNG file", libjpeg's or
// libpng's message, ...) when the file cannot be read or decoded.
bool decode_image(const std::string& path, Image8& out, std::string& why);

// Gray <-> RGB as PIL converts: gray to RGB copies the value, RGB to gray is
// ITU-R 601-2 luma L = (19595 R + 38470 G + 7471 B + 32768) >> 16.
// `channels` must be 1 or 3.
void convert_channels(Image8& img, int64_t channels);

}  // namespace bsp
