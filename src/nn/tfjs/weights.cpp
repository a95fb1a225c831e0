#include "nn/tfjs/weights.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/files.h"

namespace avatar::nn::tfjs {
namespace {
using nlohmann::json;

size_t stored_size(const std::string& dtype) {
    if (dtype == "uint8")
        return 1;
    if (dtype == "uint16" || dtype == "float16")
        return 2;
    if (dtype == "float32" || dtype == "int32")
        return 4;
    return 0;
}

// IEEE 754 binary16 -> binary32, exact for every code (subnormals, infinities, NaN included).
float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return sign != 0 ? -magnitude : magnitude;
    }
    uint32_t bits = 0;
    if (exponent == 0x1f)
        bits = sign | 0x7f800000u | (mantissa << 13);
    else
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    float value = 0.0f;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
}

template <typename Code>
torch::Tensor dequantise_affine(const uint8_t* data, int64_t count, double scale, double min) {
    auto out = torch::empty({count}, torch::kFloat32);
    float* dst = out.data_ptr<float>();
    for (int64_t i = 0; i < count; ++i) {
        Code code;
        std::memcpy(&code, data + i * static_cast<int64_t>(sizeof(Code)), sizeof(Code));
        // tfjs computes code * scale + min in double and stores it in a Float32Array; doing the
        // same keeps the decoded weights bit-identical to the reference's.
        dst[i] = static_cast<float>(static_cast<double>(code) * scale + min);
    }
    return out;
}

}  // namespace

Weights Weights::decode(const json& manifest, const std::filesystem::path& base_dir,
                        const std::string& subject) {
    check(manifest.is_array(), subject, "weights manifest is not a JSON array of groups");
    Weights weights;
    weights.subject_ = subject;
    for (const auto& group : manifest) {
        check(group.is_object() && group.contains("paths") && group["paths"].is_array() &&
                  group.contains("weights") && group["weights"].is_array(),
              subject, "weights manifest group without 'paths' and 'weights' arrays");
        std::vector<uint8_t> bytes;
        for (const auto& shard : group["paths"]) {
            check(shard.is_string(), subject, "weights manifest shard path is not a string");
            const auto path = base_dir / shard.get<std::string>();
            const auto shard_bytes = read_file(path);
            bytes.insert(bytes.end(), shard_bytes.begin(), shard_bytes.end());
        }
        size_t offset = 0;
        for (const auto& entry : group["weights"]) {
            check(entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
                      entry.contains("shape") && entry["shape"].is_array() &&
                      entry.contains("dtype") && entry["dtype"].is_string(),
                  subject, "weights manifest entry without name, shape and dtype");
            const auto name = entry["name"].get<std::string>();
            const auto tensor_subject = subject + ": tensor '" + name + "'";
            std::vector<int64_t> shape;
            int64_t count = 1;
            for (const auto& dim : entry["shape"]) {
                check(dim.is_number_integer() && dim.get<int64_t>() >= 0, tensor_subject,
                      "shape entries must be non-negative integers");
                shape.push_back(dim.get<int64_t>());
                check(count <= (int64_t{1} << 40) / std::max<int64_t>(shape.back(), 1),
                      tensor_subject, "shape is implausibly large");
                count *= shape.back();
            }
            const auto dtype = entry["dtype"].get<std::string>();
            check(dtype == "float32" || dtype == "int32", tensor_subject,
                  "unsupported dtype '" + dtype + "' (expected float32 or int32)");
            std::string stored = dtype;
            double scale = 1.0, min = 0.0;
            if (entry.contains("quantization") && !entry["quantization"].is_null()) {
                const auto& q = entry["quantization"];
                check(q.is_object() && q.contains("dtype") && q["dtype"].is_string(),
                      tensor_subject, "quantization without a dtype");
                stored = q["dtype"].get<std::string>();
                check(stored == "uint8" || stored == "uint16" || stored == "float16",
                      tensor_subject, "unsupported quantization dtype '" + stored + "'");
                if (stored != "float16") {
                    check(q.contains("scale") && q["scale"].is_number() && q.contains("min") &&
                              q["min"].is_number(),
                          tensor_subject, "affine quantization without scale and min");
                    scale = q["scale"].get<double>();
                    min = q["min"].get<double>();
                }
            }
            const size_t size = static_cast<size_t>(count) * stored_size(stored);
            check(offset + size <= bytes.size(), tensor_subject,
                  "weight shards end before this tensor (" + std::to_string(bytes.size()) +
                      " bytes, need " + std::to_string(offset + size) + ")");
            const uint8_t* data = bytes.data() + offset;
            offset += size;

            torch::Tensor tensor;
            if (stored == "uint8") {
                tensor = dequantise_affine<uint8_t>(data, count, scale, min);
            } else if (stored == "uint16") {
                tensor = dequantise_affine<uint16_t>(data, count, scale, min);
            } else if (stored == "float16") {
                tensor = torch::empty({count}, torch::kFloat32);
                float* dst = tensor.data_ptr<float>();
                for (int64_t i = 0; i < count; ++i) {
                    uint16_t code;
                    std::memcpy(&code, data + 2 * i, 2);
                    dst[i] = half_to_float(code);
                }
            } else if (stored == "float32") {
                tensor = torch::empty({count}, torch::kFloat32);
                std::memcpy(tensor.data_ptr(), data, size);
            } else {
                tensor = torch::empty({count}, torch::kInt32);
                std::memcpy(tensor.data_ptr(), data, size);
            }
            if (dtype == "int32" && tensor.scalar_type() != torch::kInt32)
                tensor = tensor.round().to(torch::kInt32);
            check(weights.tensors_.count(name) == 0, tensor_subject, "listed twice");
            weights.names_.push_back(name);
            weights.tensors_.emplace(name, tensor.reshape(shape));
        }
        check(offset == bytes.size(), subject,
              "weight shards hold " + std::to_string(bytes.size() - offset) +
                  " bytes more than the manifest lists");
    }
    return weights;
}

Weights Weights::load_manifest(const std::filesystem::path& manifest_path) {
    const auto text = read_text_file(manifest_path);
    json manifest;
    try {
        manifest = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(manifest_path.string(), std::string("not valid JSON: ") + e.what());
    }
    return decode(manifest, manifest_path.parent_path(), manifest_path.string());
}

const torch::Tensor& Weights::get(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end())
        throw Error(subject_, "has no tensor '" + name + "'");
    return it->second;
}

torch::Tensor conv_filter_to_torch(const torch::Tensor& hwio) {
    check(hwio.dim() == 4, "conv filter", "expected [kh, kw, in, out]");
    return hwio.permute({3, 2, 0, 1}).contiguous();
}

torch::Tensor depthwise_filter_to_torch(const torch::Tensor& hwim) {
    check(hwim.dim() == 4, "depthwise filter", "expected [kh, kw, in, multiplier]");
    const auto kh = hwim.size(0), kw = hwim.size(1), in = hwim.size(2), mult = hwim.size(3);
    // TF orders output channels as in * multiplier + m, which is torch's grouped order.
    return hwim.permute({2, 3, 0, 1}).reshape({in * mult, 1, kh, kw}).contiguous();
}

}  // namespace avatar::nn::tfjs
