#pragma once
// TensorFlow.js weight manifests: the format every pretrained face net of this project ships in
// (face-api's X-weights_manifest.json, and the "weightsManifest" of TFJS graph models).
//
// A manifest is a JSON array of groups {paths: [shard, ...], weights: [{name, shape, dtype,
// quantization?}, ...]}. A group's shards are concatenated and its tensors lie back to back in
// manifest order, with no header or alignment. Quantised tensors store uint8/uint16 codes
// (value = code * scale + min) or IEEE half floats; all are decoded to float32 (int32 tensors
// stay int32). Layouts stay TensorFlow's (NHWC activations, HWIO filters): converting to torch
// layouts is the job of each network.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace avatar::nn::tfjs {

class Weights {
public:
    // Decodes every tensor the manifest lists. Shard paths are relative to `base_dir`. Throws
    // Error naming the manifest (`subject`) or the shard on a malformed entry, an unknown dtype
    // or a size mismatch (shards too short, or bytes left over).
    static Weights decode(const nlohmann::json& manifest, const std::filesystem::path& base_dir,
                          const std::string& subject);
    // Reads a face-api style X-weights_manifest.json (shards beside it).
    static Weights load_manifest(const std::filesystem::path& manifest_path);

    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    // The tensor `name`; throws Error naming the manifest and the tensor if it is absent.
    const torch::Tensor& get(const std::string& name) const;
    // Names in manifest order.
    const std::vector<std::string>& names() const { return names_; }
    const std::string& subject() const { return subject_; }

private:
    std::string subject_;
    std::vector<std::string> names_;
    std::map<std::string, torch::Tensor> tensors_;
};

// TensorFlow -> torch layout conversions of weights.
// Conv filter [kh, kw, in, out] -> [out, in, kh, kw].
torch::Tensor conv_filter_to_torch(const torch::Tensor& hwio);
// Depthwise filter [kh, kw, in, multiplier] -> [in * multiplier, 1, kh, kw] (use groups = in).
torch::Tensor depthwise_filter_to_torch(const torch::Tensor& hwim);

}  // namespace avatar::nn::tfjs
