#include "core/model_registry.h"

#include <cstdlib>

#include "core/error.h"

namespace avatar {

ModelRegistry& ModelRegistry::instance() {
    static ModelRegistry registry;
    return registry;
}

void ModelRegistry::add(ModelSpec spec) {
    check(!spec.name.empty(), "model registry", "a model needs a name");
    check(models_.count(spec.name) == 0, spec.name, "model registered twice");
    order_.push_back(spec.name);
    const std::string name = spec.name;
    models_.emplace(name, std::move(spec));
}

const ModelSpec* ModelRegistry::find(const std::string& name) const {
    const auto it = models_.find(name);
    return it == models_.end() ? nullptr : &it->second;
}

const ModelSpec& ModelRegistry::get(const std::string& name) const {
    if (const auto* spec = find(name))
        return *spec;
    std::string known;
    for (const auto& n : order_)
        known += (known.empty() ? "" : ", ") + n;
    throw Error(name, "unknown model (known: " + (known.empty() ? "none yet" : known) + ")");
}

std::vector<std::string> ModelRegistry::names() const {
    return order_;
}

std::optional<ModelDetection> ModelRegistry::detect(const SafetensorsFile& file) const {
    for (const auto& name : order_) {
        const auto& spec = models_.at(name);
        if (!spec.detect)
            continue;
        if (auto config = spec.detect(file))
            return ModelDetection{name, std::move(*config)};
    }
    return std::nullopt;
}

std::filesystem::path ModelRegistry::resolve_weights(const std::string& name_or_path) const {
    std::error_code ec;
    if (std::filesystem::is_regular_file(name_or_path, ec))
        return name_or_path;
    const auto* spec = find(name_or_path);
    if (spec == nullptr) {
        const bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                                     name_or_path.find('.') != std::string::npos;
        if (looks_like_path)
            throw Error(name_or_path, "no such weights file");
        get(name_or_path);  // throws the "unknown model" error with the list of names
    }
    check(!spec->default_weights.empty(), name_or_path,
          "no weights are shipped for this model; pass a weights file");
    const auto path = models_dir() / spec->default_weights;
    check(std::filesystem::is_regular_file(path, ec), path.string(),
          "shipped weights of model '" + name_or_path + "' are missing");
    return path;
}

std::filesystem::path models_dir() {
    if (const char* env = std::getenv("AVATAR_MODELS_DIR"); env != nullptr && *env != '\0') {
        return env;
    }
    return std::filesystem::path(AVATAR_SOURCE_DIR) / "models";
}

std::optional<int64_t> tensor_dim(const SafetensorsFile& file, const std::string& name, int dim) {
    if (!file.contains(name))
        return std::nullopt;
    const auto& shape = file.info(name).shape;
    if (dim < 0)
        dim += static_cast<int>(shape.size());
    if (dim < 0 || dim >= static_cast<int>(shape.size()))
        return std::nullopt;
    return shape[static_cast<size_t>(dim)];
}

}  // namespace avatar
