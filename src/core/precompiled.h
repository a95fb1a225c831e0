#pragma once
// Precompiled for every target (see CMakeLists.txt): LibTorch's umbrella header alone costs about
// 15 s per translation unit on the CI machines. Only heavy, stable third-party headers belong here.
#include <torch/torch.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
