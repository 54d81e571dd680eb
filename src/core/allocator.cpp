#include "core/allocator.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bsp {

void keep_large_allocations() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 20);  // blocks up to 256 MB come from the heap
  mallopt(M_TRIM_THRESHOLD, 512 << 20);  // and up to 512 MB free stays there
#endif
}

}  // namespace bsp
