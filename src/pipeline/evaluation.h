#pragma once
// `avatar eval`: scores predicted frames against ground truth, frame by frame, with the papers'
// metrics that can be computed honestly here. Predictions and ground truth may each be an image,
// a folder of images or a video; a source (the identity reference for CSIM) may be one image
// used for every frame, or a folder/video matched frame by frame.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace avatar::pipeline {

struct MetricInfo {
    std::string name;
    std::string description;
    std::string unit;
    bool higher_is_better = true;
    bool needs_source = false;  // compares the prediction with the source (identity), not gt
};

// Every metric `avatar eval` knows, in display order.
const std::vector<MetricInfo>& evaluation_metrics();

struct EvaluationOptions {
    std::vector<std::string> metrics;  // names from evaluation_metrics(); empty = the defaults
    bool resize_prediction = false;    // resize predictions to the ground truth's size
    int64_t max_frames = 0;            // 0 = all
    // Faces in a sequence of frames are tracked (full detection on the first frame and when the
    // track is lost, FaceMesh from the previous frame's face otherwise), one tracker per input;
    // false: a full detection in every frame (slower, each frame judged alone).
    bool track_faces = true;
    bool show_progress = true;
};

struct MetricSummary {
    std::string name;
    int64_t frames = 0;  // frames with a value (face metrics skip frames without a face)
    double mean = 0, stddev = 0, min = 0, max = 0;
};

struct EvaluationReport {
    std::vector<MetricInfo> metrics;
    std::vector<std::string> frame_names;
    std::vector<std::vector<double>> values;  // [frame][metric]; NaN where there is none
    std::vector<MetricSummary> summaries;     // one per metric
    int64_t prediction_frames = 0;            // frames read from each input
    int64_t ground_truth_frames = 0;
    std::vector<std::string> warnings;

    nlohmann::json to_json() const;
    std::string summary_table() const;  // Markdown
    std::string to_csv() const;         // one row per frame
};

// Throws Error naming the input or the metric at fault.
EvaluationReport evaluate(const std::filesystem::path& prediction,
                          const std::filesystem::path& ground_truth,
                          const std::optional<std::filesystem::path>& source,
                          const EvaluationOptions& options);

// The metrics of several predictions of one frame, in the order of `names`. The source and the
// ground truth are analysed (face detection, 468/68 points, embeddings, face-model fit) once when
// set, each prediction once when scored: the face front end, not the metrics, is the cost, so a
// benchmark that scores several methods against one truth analyses that truth once. A prediction
// that is the same tensor as the source (the unchanged-source baseline) reuses the source's
// analysis; one equal to the ground truth is analysed anew, so that identity tests of the metrics
// still run the front end twice. Images are uint8
// [H, W, 3]; without a source the identity metrics compare with the ground truth.
class FrameScorer {
public:
    explicit FrameScorer(const std::vector<std::string>& names);  // throws for unknown names
    void set_source(const torch::Tensor& source);
    void set_ground_truth(const torch::Tensor& ground_truth);
    std::vector<double> score(const torch::Tensor& prediction);  // needs the ground truth
    int64_t analyses() const;  // face analyses run so far (0 when no metric needs a face)

private:
    struct State;
    std::shared_ptr<State> state_;
};

// The metrics of one frame pair (images uint8 [H, W, 3] of equal size), in the order of `names`.
std::vector<double> evaluate_frame(const std::vector<std::string>& names,
                                   const torch::Tensor& prediction,
                                   const torch::Tensor& ground_truth,
                                   const std::optional<torch::Tensor>& source);

}  // namespace avatar::pipeline
