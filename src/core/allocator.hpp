// Process-wide allocator settings for bsp's programs.
#pragma once

namespace bsp {

// Keeps freed large blocks in the heap for reuse. A run allocates and frees
// large buffers again and again (an AIE2 program's instruction vectors for
// every candidate and model, activations per pass); glibc maps each block
// above its threshold (at most 32 MB) afresh and faults its pages in every
// time: 10-20% of `bsp estimate`. Call once at program start.
void keep_large_allocations();

}  // namespace bsp
