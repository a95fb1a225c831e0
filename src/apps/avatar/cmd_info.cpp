// avatar info FILE.safetensors: what a weights (or cases) file holds: every tensor with its dtype,
// shape and size, the metadata, and totals. --json prints the same as one JSON object.
#include <cstdio>
#include <string>

#include "apps/avatar/commands.h"
#include "core/model_registry.h"
#include "core/safetensors.h"

namespace avatar::cli {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0)
            text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

// "1.5 MiB": sizes for people; the JSON output keeps exact byte counts.
std::string human_bytes(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024.0 && unit < 4) {
        value /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
    return text;
}

nlohmann::json describe(const SafetensorsFile& file) {
    nlohmann::json info;
    info["file"] = file.subject();
    info["tensors"] = nlohmann::json::array();
    int64_t parameters = 0;
    for (const auto& t : file.tensors()) {
        info["tensors"].push_back({{"name", t.name},
                                   {"dtype", dtype_name(t.dtype)},
                                   {"shape", t.shape},
                                   {"bytes", t.end - t.begin}});
        parameters += t.numel();
    }
    info["metadata"] = file.metadata();
    info["tensor_count"] = file.tensors().size();
    info["parameter_count"] = parameters;
    info["data_bytes"] = file.data_bytes();
    if (const auto detection = ModelRegistry::instance().detect(file)) {
        info["detected_model"] = {{"model", detection->model}, {"config", detection->config}};
    } else {
        info["detected_model"] = nullptr;
    }
    return info;
}

void print_text(const nlohmann::json& info) {
    size_t name_width = 4;
    for (const auto& t : info["tensors"]) {
        name_width = std::max(name_width, t["name"].get<std::string>().size());
    }
    const int width = static_cast<int>(std::min<size_t>(name_width, 72));
    std::printf("%s\n", info["file"].get<std::string>().c_str());
    const auto& detected = info["detected_model"];
    if (detected.is_null()) {
        std::printf("model: not recognised (no registered model matches these tensors)\n");
    } else {
        std::printf("model: %s, config %s\n", detected["model"].get<std::string>().c_str(),
                    detected["config"].dump().c_str());
    }
    std::printf("\n%-*s  %-5s  %-24s  %12s\n", width, "name", "dtype", "shape", "bytes");
    for (const auto& t : info["tensors"]) {
        std::printf("%-*s  %-5s  %-24s  %12llu\n", width, t["name"].get<std::string>().c_str(),
                    t["dtype"].get<std::string>().c_str(),
                    shape_text(t["shape"].get<std::vector<int64_t>>()).c_str(),
                    static_cast<unsigned long long>(t["bytes"].get<uint64_t>()));
    }
    if (!info["metadata"].empty()) {
        std::printf("\nmetadata\n");
        for (const auto& [key, value] : info["metadata"].items()) {
            std::printf("  %s: %s\n", key.c_str(), value.get<std::string>().c_str());
        }
    }
    const auto bytes = info["data_bytes"].get<uint64_t>();
    std::printf("\n%zu tensors, %lld parameters, %s (%llu bytes)\n",
                info["tensor_count"].get<size_t>(),
                static_cast<long long>(info["parameter_count"].get<int64_t>()),
                human_bytes(bytes).c_str(), static_cast<unsigned long long>(bytes));
}

}  // namespace

void add_info_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto* cmd = app.add_subcommand(
        "info", "List the tensors (name, dtype, shape, bytes) and metadata of a safetensors file");
    auto file = std::make_shared<std::string>();
    cmd->add_option("file", *file, "A .safetensors file")->required();
    commands.push_back({cmd, [&global, file] {
                            const auto info = describe(SafetensorsFile::open(*file));
                            if (global.json) {
                                print_json(info);
                            } else {
                                print_text(info);
                            }
                            return 0;
                        }});
}

}  // namespace avatar::cli
