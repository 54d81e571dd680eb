#include "data/image_decode.hpp"

// libjpeg's header needs size_t and FILE declared first.
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <jpeglib.h>
#include <png.h>

#include "core/error.hpp"

namespace bsp {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

bool too_large(int64_t h, int64_t w, std::string& why) {
  if (h < 1 || w < 1 || h > kMaxDecodedPixels / w) {
    why = fmt::format("{}x{} pixels is empty or too large (at most {} pixels)", w, h, kMaxDecodedPixels);
    return true;
  }
  return false;
}

// libjpeg reports errors through error_exit, which must not return: jump
// back to decode_jpeg with the message.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};
void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}
void jpeg_quiet(j_common_ptr, int) {}  // warnings (e.g. a few corrupt bytes) are not errors

// No C++ object with a destructor may live between setjmp and longjmp in
// these two functions: the pixels go into `out`, owned by the caller.
bool decode_jpeg(FILE* f, Image8& out, std::string& why) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_quiet;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    why = err.message;
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int64_t h = cinfo.output_height, w = cinfo.output_width, oc = cinfo.output_components;
  if (too_large(h, w, why)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  out.h = h;
  out.w = w;
  out.c = cmyk ? 3 : oc;
  out.px.resize(static_cast<size_t>(h * w * oc));  // CMYK: 4 bytes a pixel, packed to RGB below
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.px.data() + static_cast<size_t>(cinfo.output_scanline) * static_cast<size_t>(w * oc);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  // Adobe's CMYK JPEGs (the common kind) store inverted values: R = C * K / 255.
  const bool inverted = cinfo.saw_Adobe_marker;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (cmyk) {
    uint8_t* p = out.px.data();
    for (int64_t i = 0; i < h * w; ++i) {
      const int k = inverted ? p[4 * i + 3] : 255 - p[4 * i + 3];
      for (int ch = 0; ch < 3; ++ch) {
        const int v = inverted ? p[4 * i + ch] : 255 - p[4 * i + ch];
        p[3 * i + ch] = static_cast<uint8_t>((v * k + 127) / 255);
      }
    }
    out.px.resize(static_cast<size_t>(h * w * 3));
  }
  return true;
}

struct PngError {
  std::jmp_buf jump;
  char message[256];
};
void png_fail(png_structp png, png_const_charp msg) {
  auto* e = static_cast<PngError*>(png_get_error_ptr(png));
  std::snprintf(e->message, sizeof e->message, "%s", msg);
  std::longjmp(e->jump, 1);
}
void png_quiet(png_structp, png_const_charp) {}

bool decode_png(FILE* f, Image8& out, std::string& why) {
  PngError err;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_quiet);
  if (!png) {
    why = "out of memory";
    return false;
  }
  png_infop info = png_create_info_struct(png);
  // The row pointers outlive a longjmp: allocated with malloc, freed on both paths.
  png_bytep* volatile rows = nullptr;
  if (!info || setjmp(err.jump)) {
    std::free(rows);
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    why = info ? err.message : "out of memory";
    return false;
  }
  png_init_io(png, f);
  png_read_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (too_large(h, w, why)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  const int type = png_get_color_type(png, info);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_packing(png);                                   // 1, 2, 4-bit samples to bytes
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int64_t c = png_get_channels(png, info);
  if (c != 1 && c != 3) png_error(png, "unexpected channel count after conversion");
  out.h = h;
  out.w = w;
  out.c = c;
  out.px.resize(static_cast<size_t>(h * w * c));
  rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * static_cast<size_t>(h)));
  if (!rows) png_error(png, "out of memory");
  for (int64_t y = 0; y < h; ++y) rows[y] = out.px.data() + static_cast<size_t>(y * w * c);
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  std::free(rows);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

bool decode_image(const std::string& path, Image8& out, std::string& why) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    why = errno_message(errno);
    return false;
  }
  unsigned char magic[8] = {};
  const size_t got = std::fread(magic, 1, sizeof magic, f.get());
  std::rewind(f.get());
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  out = Image8{};
  if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) return decode_jpeg(f.get(), out, why);
  if (got == 8 && std::memcmp(magic, png_sig, 8) == 0) return decode_png(f.get(), out, why);
  why = got == 0 ? "empty file" : "not a JPEG or PNG file";
  return false;
}

void convert_channels(Image8& img, int64_t channels) {
  if (img.c == channels) return;
  const int64_t n = img.h * img.w;
  std::vector<uint8_t> px(static_cast<size_t>(n * channels));
  if (channels == 3) {
    for (int64_t i = 0; i < n; ++i) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = img.px[i];
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t r = img.px[3 * i], g = img.px[3 * i + 1], b = img.px[3 * i + 2];
      px[i] = static_cast<uint8_t>((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
    }
  }
  img.px = std::move(px);
  img.c = channels;
}

}  // namespace bsp
