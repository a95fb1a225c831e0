#include "nn/state_dict.h"

#include <set>

#include "core/error.h"

namespace avatar::nn {

std::vector<std::pair<std::string, torch::Tensor>> state_tensors(const torch::nn::Module& module,
                                                                 const std::string& prefix) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : module.named_parameters(/*recurse=*/true)) {
        tensors.emplace_back(prefix + p.key(), p.value());
    }
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
        tensors.emplace_back(prefix + b.key(), b.value());
    }
    return tensors;
}

void save_state(const torch::nn::Module& module, const std::filesystem::path& path,
                const std::map<std::string, std::string>& metadata) {
    save_safetensors(path, state_tensors(module), metadata);
}

LoadReport load_state(torch::nn::Module& module, const SafetensorsFile& file,
                      const std::string& prefix, bool strict) {
    LoadReport report;
    std::set<std::string> used;
    torch::NoGradGuard no_grad;
    auto load_one = [&](const std::string& name, torch::Tensor& target) {
        const std::string key = prefix + name;
        if (!file.contains(key)) {
            report.missing.push_back(key);
            return;
        }
        const auto source = file.get(key);
        check(source.sizes() == target.sizes(), file.subject(),
              "tensor '" + key + "' has shape " + c10::str(source.sizes()) +
                  ", the model expects " + c10::str(target.sizes()));
        target.copy_(source);
        used.insert(key);
    };
    for (auto& item : module.named_parameters(/*recurse=*/true))
        load_one(item.key(), item.value());
    for (auto& item : module.named_buffers(/*recurse=*/true))
        load_one(item.key(), item.value());
    for (const auto& info : file.tensors()) {
        if (info.name.rfind(prefix, 0) == 0 && used.count(info.name) == 0) {
            report.unexpected.push_back(info.name);
        }
    }
    if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
        std::string message;
        if (!report.missing.empty()) {
            message += std::to_string(report.missing.size()) + " tensor(s) missing (first: '" +
                       report.missing.front() + "')";
        }
        if (!report.unexpected.empty()) {
            message += std::string(message.empty() ? "" : "; ") +
                       std::to_string(report.unexpected.size()) +
                       " unexpected tensor(s) (first: '" + report.unexpected.front() + "')";
        }
        throw Error(file.subject(), message);
    }
    return report;
}

}  // namespace avatar::nn
