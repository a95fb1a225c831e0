#pragma once
// A TensorFlow.js graph-model interpreter on LibTorch: the MediaPipe / human face models
// (BlazeFace, FaceMesh, Iris, Emotion, FaceRes, Selfie, Meet) run through it.
//
// A graph model is X.json = {modelTopology: {node: [TF NodeDefs]}, weightsManifest, signature?}
// plus its weight shards. Loading "compiles" the graph once:
//   - the nodes the outputs depend on are put in topological order; an op outside the supported
//     set is an Error naming the model, the op and the node, raised at load time;
//   - weights are decoded and pre-permuted to torch layouts (conv filters OIHW, depthwise
//     filters [C*M, 1, kh, kw], transposed-conv filters IOHW, MatMul operands pre-transposed);
//   - subgraphs that depend only on constants are evaluated once (constant folding), Identity
//     nodes become aliases;
//   - every step refers to its operands by slot index: no string lookup happens per call.
// At run time 4-D activations are kept NCHW between convolutions; a tensor is converted back to
// the graph's NHWC layout only where an op's semantics need it (Reshape, MatMul, reductions or
// concatenations over axes that differ, legacy resize) and at the outputs. Inputs and outputs
// use TensorFlow's NHWC convention.
//
// Everything is plain torch ops on the inputs' device, so gradients flow to the inputs (FaceRes
// as an identity loss). Any batch size works where the graph allows it; a Reshape whose constant
// target starts with 1 (graphs converted with a fixed batch of 1) keeps the input's batch.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace avatar::nn::tfjs {

// Loading the first model also raises glibc's mmap and trim thresholds (see
// keep_freed_tensor_memory): freed activation buffers stay in the heap for reuse instead of being
// unmapped and page-faulted again on every call, which made small models several times slower.
void keep_freed_tensor_memory();

class GraphModel {
public:
    GraphModel() = default;

    // Loads X.json and the weight shards its manifest names (beside it).
    static GraphModel load(const std::filesystem::path& json_path);
    // From an already parsed model.json (tests): shards are read from `base_dir`; `subject`
    // names the model in errors.
    static GraphModel from_json(const std::string& model_json_text,
                                const std::filesystem::path& base_dir, const std::string& subject);

    bool loaded() const { return impl_ != nullptr; }
    const std::string& subject() const;

    // Graph inputs (Placeholder node names), in signature order when the model has one.
    const std::vector<std::string>& input_names() const;
    // Static NHWC shape of input i from the graph (-1 = any), empty if the graph gives none.
    const std::vector<int64_t>& input_shape(size_t i) const;
    // Output names in the model's output order (signature order, else graph order): signature
    // keys where the model has a signature ("output_mesh"), else node names ("Identity_2").
    const std::vector<std::string>& output_names() const;
    // Index into output_names() of an output named by signature key or node name, with or
    // without ":0"; throws Error naming the model if there is none.
    size_t output_index(const std::string& name) const;

    // Runs the graph. `inputs` in input_names() order (NHWC float tensors, any batch); returns
    // every output in output_names() order, NHWC and contiguous.
    std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& inputs) const;
    // Single-input shorthand.
    std::vector<torch::Tensor> run(const torch::Tensor& input) const;

    // Moves every weight and constant (the input tensors must be on the same device).
    void to(torch::Device device);
    torch::Device device() const;

    // Number of compiled steps (after folding and aliasing), for tests and logs.
    size_t num_steps() const;

    // Per-step wall time of run(inputs), averaged over `repeats` runs after one warm-up: where a
    // model spends its time (each entry: the TF node and op, milliseconds).
    struct StepTime {
        std::string node;
        double ms = 0;
    };
    std::vector<StepTime> profile(const std::vector<torch::Tensor>& inputs, int repeats = 10) const;

    struct Impl;

private:
    std::vector<torch::Tensor> run_impl(const std::vector<torch::Tensor>& inputs,
                                        std::vector<double>* step_ms) const;
    std::shared_ptr<Impl> impl_;
};

}  // namespace avatar::nn::tfjs
