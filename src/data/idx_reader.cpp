// MNIST-style IDX files (http://yann.lecun.com/exdb/mnist/): a big-endian
// header (magic 0x00000803 for 3-d unsigned-byte images, 0x00000801 for 1-d
// labels, then one uint32 per dimension) followed by the raw bytes. zlib's
// gzread reads gzip-compressed and plain files alike.
#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "data/dataset.hpp"

namespace bsp {

namespace {

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail("cannot read '{}': {}", path, errno_message(errno));
    if (S_ISDIR(st.st_mode)) fail("cannot read '{}': is a directory", path);
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) fail("cannot read '{}': {}", path, errno_message(errno ? errno : ENOMEM));
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads exactly n bytes or fails with "truncated".
  void read(void* dst, size_t n) {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0) {
      unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      int got = gzread(f_, p, chunk);
      if (got < 0) {
        int zerr = 0;
        const char* msg = gzerror(f_, &zerr);
        fail("cannot read '{}': {}", path_, zerr == Z_ERRNO ? errno_message(errno) : std::string(msg));
      }
      if (got == 0) fail("cannot read '{}': file is truncated", path_);
      p += got;
      n -= static_cast<size_t>(got);
    }
  }
  uint32_t read_be32() {
    unsigned char b[4];
    read(b, 4);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  ImageSet s;
  {
    GzFile f(images_path);
    uint32_t magic = f.read_be32();
    if (magic != 0x00000803)
      fail("cannot read '{}': not an IDX image file (magic {:#010x}, expected 0x00000803)", images_path, magic);
    uint32_t n = f.read_be32(), h = f.read_be32(), w = f.read_be32();
    if (h == 0 || w == 0 || h > kMaxImageSide || w > kMaxImageSide)
      fail("cannot read '{}': bad image size {}x{}", images_path, h, w);
    // Before the allocation: the header's count is believed only if it fits.
    check_image_set_size(fmt::format("'{}'", images_path), n, h, w, 1, 1);
    s.n = n;
    s.h = h;
    s.w = w;
    s.c = 1;
    s.u8 = Array<uint8_t>({s.n, s.h, s.w, 1});
    f.read(s.u8.data(), s.u8.size());
  }
  {
    GzFile f(labels_path);
    uint32_t magic = f.read_be32();
    if (magic != 0x00000801)
      fail("cannot read '{}': not an IDX label file (magic {:#010x}, expected 0x00000801)", labels_path, magic);
    uint32_t n = f.read_be32();
    if (n != s.n) fail("cannot read '{}': {} labels for {} images in '{}'", labels_path, n, s.n, images_path);
    Array<uint8_t> raw({s.n});
    f.read(raw.data(), raw.size());
    s.labels = Array<int64_t>({s.n});
    for (int64_t i = 0; i < s.n; ++i) s.labels[static_cast<size_t>(i)] = raw[static_cast<size_t>(i)];
  }
  return s;
}

}  // namespace bsp
