#pragma once
// The `dpe` method of `avatar benchmark synthbench` (pipeline/synthbench.h): DPE weights of any
// size run on the benchmark pairs the way `avatar animate` runs them (docs/animate.md), except
// that the crops come from the true 468 points of each image rather than from the tracker, so the
// benchmark scores the engine and not the face front end:
//   crop    the source and the driving image cropped FOMM-style (face_crop, 1.7 x the extent of
//           the points) at the weights' size, around their true points (projected from the
//           pairs' coefficient rows, as the warp baseline's)
//   stage   expression_only -> exp, pose_only -> pose, reenact and self_reenact -> both
//   motion  absolute: the driving image's own motion (the official demo). relative: the source's
//           own motion plus the driving motion's change since the driver's reference frame,
//           which is the first frame of the driver's video in the data set (`avatar animate`
//           takes the first driving frame likewise)
//   paste   the rendered crop pasted into the full source frame through the crop's exact inverse
//           (paste_crop, feathered, Lab colour match): only the face region for expression_only
//           (PasteRegion::kAuto's choice for exp), the whole crop otherwise
// The source is encoded once per pair, each driver's reference motion once per run.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "engines/dpe/generator.h"
#include "face/alignment.h"
#include "pipeline/portrait_animation.h"

namespace avatar::pipeline {

// The DPE stage that answers a synthbench task; throws Error for an unknown task.
engines::dpe::Stage synthbench_dpe_stage(const std::string& task);

class SynthbenchDpe {
public:
    // weights: a DPE generator (.safetensors in the official layout, any size); dataset_root:
    // the data set folder (synth.json), read for the reference frames of relative motion.
    // Throws Error naming the weights file if it cannot be read or is not a DPE generator.
    SynthbenchDpe(const std::filesystem::path& weights, MotionMode mode,
                  std::filesystem::path dataset_root);

    int size() const;
    MotionMode mode() const { return mode_; }

    // The pair's source: uint8 [H, W, 3] and its true points [468, 2+] in its pixels. `name`
    // (the image's path) is named by errors.
    void set_source(const torch::Tensor& image, const torch::Tensor& points,
                    const std::string& name);

    // The prediction of `task` for the current source, uint8 [H, W, 3] in the source's size:
    // driving image and true points as for set_source; driver_identity indexes the data set's
    // identities (the driving image's person, for the reference frame of relative motion).
    torch::Tensor predict(const std::string& task, const torch::Tensor& driving,
                          const torch::Tensor& driving_points, int64_t driver_identity,
                          const std::string& name);

private:
    torch::Tensor crop_motion(const torch::Tensor& image, const face::CropTransform& crop);
    const torch::Tensor& reference_motion(int64_t identity);

    std::filesystem::path weights_, dataset_root_;
    engines::dpe::Generator generator_{nullptr};
    MotionMode mode_;
    torch::Device device_{torch::kCPU};
    torch::Tensor source_image_, source_points_, source_motion_;
    face::CropTransform source_crop_;
    engines::dpe::SourceCode source_;
    std::map<int64_t, torch::Tensor> references_;  // driver identity -> reference motion
};

}  // namespace avatar::pipeline
