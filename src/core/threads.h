#pragma once
// Thread count for LibTorch (intra-op and inter-op) and OpenCV. LibTorch's own default is not
// trusted (Debian's build starts with 1 intra-op thread), so every entry point sets it explicitly.

namespace avatar {

// Number of hardware threads (at least 1).
int hardware_threads();

// Sets the intra-op threads of LibTorch and the threads of OpenCV; `threads` <= 0 means all
// hardware threads. Returns the number set.
int set_threads(int threads);

}  // namespace avatar
