#pragma once
// Maps model names to their weights and recognises a model, and its configuration, from the
// tensors of a safetensors file. Configurations are never guessed from file names: each model's
// detect() reads tensor names and shapes (stable-diffusion.cpp's detect_from_weights habit), so an
// official checkpoint converted once and a small model of ours load through the same path.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

namespace avatar {

struct ModelSpec {
    std::string name;         // unique, e.g. "dpe", "dpe-own", "stylegan2-ada"
    std::string engine;       // engine or layer it belongs to, e.g. "dpe", "face"
    std::string description;  // one line for `avatar models` / errors
    // Weights shipped with the project, relative to models_dir(); empty if none are shipped.
    std::filesystem::path default_weights;
    // The configuration if `file` holds this model's tensors, std::nullopt otherwise. Must not
    // throw for foreign files.
    std::function<std::optional<nlohmann::json>(const SafetensorsFile& file)> detect;
};

struct ModelDetection {
    std::string model;
    nlohmann::json config;
};

class ModelRegistry {
public:
    static ModelRegistry& instance();

    // Throws Error if a model of that name is already registered.
    void add(ModelSpec spec);
    const ModelSpec* find(const std::string& name) const;
    // Throws Error naming `name` and listing the known models.
    const ModelSpec& get(const std::string& name) const;
    std::vector<std::string> names() const;

    // The first registered model whose detect() accepts the file.
    std::optional<ModelDetection> detect(const SafetensorsFile& file) const;

    // A path to an existing file is returned as is; a model name maps to its default weights
    // under models_dir(). Throws Error naming the argument otherwise.
    std::filesystem::path resolve_weights(const std::string& name_or_path) const;

private:
    std::map<std::string, ModelSpec> models_;
    std::vector<std::string> order_;  // registration order, for detect()
};

// Where shipped models live: $AVATAR_MODELS_DIR if set, else <source tree>/models.
std::filesystem::path models_dir();

// The detect() of a model whose Config offers `static Config detect_from_weights(file)` and
// `to_json()`: a file must hold every tensor of `signature` (a cheap test that rules out foreign
// files), then the configuration is read from shapes; a file that looks alike but does not fit
// (detect_from_weights throws) is not this model.
template <typename Config>
std::function<std::optional<nlohmann::json>(const SafetensorsFile&)> detect_config(
    std::vector<std::string> signature) {
    return [signature = std::move(signature)](
               const SafetensorsFile& file) -> std::optional<nlohmann::json> {
        for (const auto& name : signature) {
            if (!file.contains(name))
                return std::nullopt;
        }
        try {
            return Config::detect_from_weights(file).to_json();
        } catch (const Error&) {
            return std::nullopt;
        }
    };
}

// Shape helpers for detect() functions: the size of dimension `dim` of tensor `name`, or
// std::nullopt if the tensor is absent or has fewer dimensions.
std::optional<int64_t> tensor_dim(const SafetensorsFile& file, const std::string& name, int dim);

}  // namespace avatar
