// avatar system-info: what this build and this machine offer (versions, threads, CPU, CUDA).
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <opencv2/core/version.hpp>

#include <cstdio>
#include <fstream>
#include <thread>

#include "apps/avatar/commands.h"
#include "core/threads.h"
#include "core/version.h"
#include "media/ffmpeg_info.h"

namespace avatar::cli {
namespace {

std::string cpu_model_name() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos)
                return line.substr(colon + 2);
        }
    }
    return "unknown";
}

std::vector<std::string> cpu_features() {
    std::vector<std::string> features;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const std::pair<const char*, bool> known[] = {
        {"sse4.2", __builtin_cpu_supports("sse4.2")},   {"avx", __builtin_cpu_supports("avx")},
        {"avx2", __builtin_cpu_supports("avx2")},       {"fma", __builtin_cpu_supports("fma")},
        {"avx512f", __builtin_cpu_supports("avx512f")},
    };
    for (const auto& [name, present] : known) {
        if (present)
            features.emplace_back(name);
    }
#endif
    return features;
}

nlohmann::json gather() {
    nlohmann::json info;
    info["avatar"] = {{"version", kVersion}, {"git", kGitDescribe}};
    info["libtorch"] = {{"version", TORCH_VERSION},
                        {"intra_op_threads", at::get_num_threads()},
                        {"inter_op_threads", at::get_num_interop_threads()},
                        {"mkldnn", at::hasMKLDNN()},
                        {"openmp", at::hasOpenMP()},
                        {"mkl", at::hasMKL()}};
    const bool cuda = torch::cuda::is_available();
    info["cuda"] = {{"usable", cuda}, {"devices", cuda ? torch::cuda::device_count() : 0}};
    info["cpu"] = {{"model", cpu_model_name()},
                   {"hardware_threads", hardware_threads()},
                   {"features", cpu_features()}};
    info["opencv"] = CV_VERSION;
    info["ffmpeg"] = media::ffmpeg_info();
    return info;
}

}  // namespace

void add_system_info_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto* cmd = app.add_subcommand(
        "system-info", "Show versions, thread counts, CPU features and whether CUDA is usable");
    commands.push_back(
        {cmd, [&global] {
             const auto info = gather();
             if (global.json) {
                 print_json(info);
                 return 0;
             }
             const auto& t = info["libtorch"];
             std::printf("avatar      %s (%s)\n", kVersion, kGitDescribe);
             std::printf(
                 "LibTorch    %s, %d intra-op / %d inter-op threads, "
                 "oneDNN %s, OpenMP %s\n",
                 t["version"].get<std::string>().c_str(), t["intra_op_threads"].get<int>(),
                 t["inter_op_threads"].get<int>(), t["mkldnn"].get<bool>() ? "yes" : "no",
                 t["openmp"].get<bool>() ? "yes" : "no");
             std::string features;
             for (const auto& f : info["cpu"]["features"]) {
                 features += " " + f.get<std::string>();
             }
             std::printf("CPU         %s, %d hardware threads, features:%s\n",
                         info["cpu"]["model"].get<std::string>().c_str(),
                         info["cpu"]["hardware_threads"].get<int>(), features.c_str());
             std::printf("CUDA        %s\n",
                         info["cuda"]["usable"].get<bool>()
                             ? ("usable, " + std::to_string(info["cuda"]["devices"].get<int>()) +
                                " device(s)")
                                   .c_str()
                             : "not usable (CPU only)");
             std::printf("OpenCV      %s\n", info["opencv"].get<std::string>().c_str());
             const auto& ff = info["ffmpeg"];
             std::printf("FFmpeg      %s (H.264 encoder: %s)\n",
                         ff["version"].get<std::string>().c_str(),
                         ff["h264_encoder"].get<std::string>().c_str());
             return 0;
         }});
}

}  // namespace avatar::cli
