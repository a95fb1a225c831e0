#pragma once
// `avatar benchmark synthbench`: scores methods on the benchmark pairs of the synthetic world
// (`avatar synth --pairs` / `--preset synthbench-v2`, docs/synthetic-world.md), where the true
// answer of each edit is known. Tasks, per pair (A = the source identity, B = the driver):
//   self_reenact     A at another frame of its own motion (driven by that frame; pair sets
//                    written before this task existed lack it and are scored without it)
//   reenact          A with B's pose, expression and gaze   (cross-identity reenactment)
//   expression_only  A's pose, B's expression and gaze
//   pose_only        B's pose, A's expression and gaze
// where B's pose is B's head rotation, A keeping its position and size in the frame (pair rule
// 2, synthbench v2), or all of B's pose columns (rule 1, synthbench v1). The notes name the set
// and its rule.
// Methods:
//   source  the unchanged source image
//   warp    the landmark-driven piecewise-affine warp (pipeline/landmark_warp.h) from the source's
//           468 points to the target's, both projected from the pairs' true coefficient rows (an
//           oracle for where the landmarks go; the warp itself knows nothing of faces)
//   warp-relative  the same warp onto the points of relative motion: the source's row plus the
//           driver's change since its video's first frame (the reference of --dpe-motion
//           relative). What a perfect relative-motion engine scores against these absolute truths
//   warp-fitted  the same warp between points read from the images alone: the face model fitted
//           to the points the front end finds in the source and the driving image, the driver's
//           motion put on the source's fit (synthbench_fitted_points). A landmark-driven warp
//           without the oracle
//   dpe     a DPE generator (--dpe-weights, any size) on crops around the true points, the stage
//           and paste-back per task (pipeline/synthbench_dpe.h)
//   dpe-fitted  the same, with the motion code read from the driving image then fitted to carry
//           warp-fitted's points (--dpe-fit-steps Adam steps, engines/dpe/motion_fit.h): the
//           generator renders, the landmarks steer its warps
//   dpe-oracle  the dpe method with its motion code fitted to the task's true image (L1 in the
//           source's crop, --dpe-fit-steps, engines::dpe::fit_motion_to_image): it uses the
//           answer, so it is not a method but the bound on what these decoders can render
//   ceiling the true image through the dpe method's crop (at --ceiling-size) and paste-back:
//           the best any generator of that size can score here (synthbench_ceiling)
// Metrics are `avatar eval`'s (pipeline/evaluation.h), prediction vs the task's ground truth, the
// identity metric vs the source image. Each image is analysed by the face front end once per
// pair (FrameScorer), however many methods are scored against it.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace avatar::pipeline {

struct SynthbenchOptions {
    std::vector<std::string> metrics = {"psnr",    "ssim", "face_psnr", "csim",
                                        "akd_iod", "aed",  "apd"};
    std::vector<std::string> methods = {"source", "warp"};
    std::filesystem::path dpe_weights;  // needed by the dpe method
    // absolute | relative (pipeline/portrait_animation.h). Absolute: the truths are absolute
    // transfers, and a perfect relative-motion engine scores about what the unchanged source
    // does (the warp-relative method).
    std::string dpe_motion = "absolute";
    std::string dpe_paste = "auto";  // auto | replace | difference (PasteMode), also ceiling's
    std::string dpe_driver_crop = "auto";  // auto | own | source (DriverCrop, synthbench_dpe.h)
    int dpe_fit_steps = 40;  // dpe-fitted's and dpe-oracle's Adam steps on the motion code
    std::string dpe_fit_space = "latent";  // latent | directions (engines/dpe/motion_fit.h)
    double dpe_fit_expression = 0.0;       // dpe-fitted's expression weight (motion_fit.h)
    int ceiling_size = 64;                 // the crop size of the ceiling method
    int64_t max_pairs = 0;                 // 0 = all
    bool show_progress = true;
};

struct SynthbenchRow {
    std::string method, task;
    int64_t pairs = 0;
    std::vector<double> mean;  // per metric, over the pairs with a value (NaN if none)
    std::vector<double> sem;   // per metric, the mean's standard error (NaN below 2 values)
};

// One method's scores on one task of one pair (NaN where a metric has no value).
struct SynthbenchPairScore {
    std::string pair;  // the pair's folder name (pairs/pair_KKKK)
    std::string task, method;
    std::vector<double> values;  // per metric
};

struct SynthbenchReport {
    std::vector<std::string> metrics;
    std::vector<SynthbenchRow> rows;  // method-major, then the tasks in the order above
    std::vector<std::string> notes;   // what a method ran with (the DPE weights and motion)
    int64_t face_analyses = 0;        // images the face front end analysed, over all pairs
    // Every score the means are made of, pair by pair: two methods (or two runs) compared pair
    // by pair vary far less than their means over a set of 100 pairs do.
    std::vector<SynthbenchPairScore> per_pair;
    std::string to_markdown() const;
    // The rows with each mean's standard error over the pairs ("sem"), and the notes.
    nlohmann::json to_json() const;
    // per_pair as CSV: pair,task,method,<metrics...> (empty cells for NaN).
    std::string per_pair_csv() const;
};

// The row a perfect relative-motion engine renders (what `--dpe-motion relative` asks of a
// generator), the target of the warp-relative method: the source's row plus the driver's change
// since its reference frame, in the parts the task transfers (pose for pose_only, expression and
// gaze for expression_only, both for reenact and self_reenact); always the source's identity.
// Angles, expression and gaze add; the scale multiplies; the translation adds the driver's move
// at the source's scale. Rows are avatar-face-v1 (face_layout_size() numbers).
std::vector<double> synthbench_relative_row(const std::string& task,
                                            const std::vector<double>& source,
                                            const std::vector<double>& driving,
                                            const std::vector<double>& reference);

// The points of the warp-fitted method: a landmark-driven warp as a tool without the answer does
// it, from the points the front end finds in the source (`source_mesh`) and in the driving image
// (`driving_mesh`), both [468, 3] (image px, FaceMesh's z). Each is fitted with the face model
// alone (its own identity, as `avatar eval` fits every image); the driver's motion is put on the
// source's fit as the task asks, with absolute motion as the truths are made (pair rule 2):
// rotation and expression for reenact, the expression for expression_only, the rotation for
// pose_only, the source keeping its place and size in the frame. self_reenact's driver is a frame
// of the source's own video (the same camera), so its whole fitted pose is taken, with the
// source's identity. The warp goes from `source` (the source's fit, projected) to `target`, so a
// bias the detector has on both images cancels. Unlike the warp's points these know nothing of
// the answer: their error is the front end's and the fit's.
struct FittedWarpPoints {
    torch::Tensor source, target;  // float64 [468, 3], image px
};
FittedWarpPoints synthbench_fitted_points(const std::string& task, const torch::Tensor& source_mesh,
                                          const torch::Tensor& driving_mesh);

// dir: a data set folder with pairs/pairs.json (or the pairs folder itself). Throws avatar::Error
// naming the missing file or the bad option.
SynthbenchReport run_synthbench(const std::filesystem::path& dir, const SynthbenchOptions& options);

}  // namespace avatar::pipeline
