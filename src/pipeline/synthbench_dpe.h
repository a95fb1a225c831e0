#pragma once
// The `dpe` method of `avatar benchmark synthbench` (pipeline/synthbench.h): DPE weights of any
// size run on the benchmark pairs the way `avatar animate` runs them (docs/animate.md), except
// that the crops come from the true 468 points of each image rather than from the tracker, so the
// benchmark scores the engine and not the face front end:
//   crop    the source cropped FOMM-style (face_crop, 1.7 x the extent of the points) at the
//           weights' size, around its true points (projected from the pairs' coefficient rows,
//           as the warp baseline's); the driving image by DriverCrop: kOwn, a crop of its own
//           made the same way, kSource, the source's crop (as the frames of one video share one
//           crop in VoxCeleb and in our training clips, so the driver's position and size in the
//           frame reach the engine), or kAuto (the default): the source's crop for
//           self_reenact with absolute motion (two frames of one video), its own otherwise
//   stage   expression_only -> exp, pose_only -> pose, reenact and self_reenact -> both
//   motion  absolute: the driving image's own motion (the official demo). relative: the source's
//           own motion plus the driving motion's change since the driver's reference frame,
//           which is the first frame of the driver's video in the data set (`avatar animate`
//           takes the first driving frame likewise)
//   paste   the rendered crop pasted into the full source frame through the crop's exact inverse
//           (feathered): only the face region for expression_only (PasteRegion::kAuto's choice
//           for exp), the whole crop otherwise; by --dpe-paste (PasteMode, default auto: the
//           difference from the source's reconstruction for expression_only, the crop's pixels
//           with a Lab colour match otherwise)
// The source is encoded once per pair, each driver's reference motion once per run.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "engines/dpe/generator.h"
#include "engines/dpe/motion_fit.h"
#include "face/alignment.h"
#include "pipeline/portrait_animation.h"

namespace avatar::pipeline {

// The DPE stage that answers a synthbench task; throws Error for an unknown task.
engines::dpe::Stage synthbench_dpe_stage(const std::string& task);

// The rendered crop (the generator's output form, as crop_input gives) in the source the way the
// dpe method pastes it for `task`: the face region for expression_only, the crop otherwise; by
// `mode` resolved for the task's stage (kDifference needs `reconstruction`, the generator's
// rendering of the unedited source).
torch::Tensor paste_synthbench_crop(const std::string& task, PasteMode mode,
                                    const torch::Tensor& source, const torch::Tensor& source_points,
                                    const face::CropTransform& crop, const torch::Tensor& rendered,
                                    const torch::Tensor& reconstruction = {});

// The `ceiling` method: the task's true image itself, cropped at `size` in the source's crop and
// pasted back as the dpe method pastes its output (with the source's own crop as the
// reconstruction). It is what a perfect size x size generator would score through this crop and
// paste-back, the bound on any model of that size.
torch::Tensor synthbench_ceiling(const std::string& task, PasteMode mode,
                                 const torch::Tensor& source, const torch::Tensor& source_points,
                                 const torch::Tensor& truth, int size);

// How the dpe method crops the driving image (--dpe-driver-crop).
enum class DriverCrop {
    kAuto,    // kSource for self_reenact with absolute motion, else kOwn
    kOwn,     // around the driver's own points: its head is centred and sized like the source's
    kSource,  // with the source's crop: where the driver's head is in the frame is kept
};
DriverCrop parse_driver_crop(const std::string& name);  // "auto" | "own" | "source"; or Error

class SynthbenchDpe {
public:
    // weights: a DPE generator (.safetensors in the official layout, any size); dataset_root:
    // the data set folder (synth.json), read for the reference frames of relative motion.
    // Throws Error naming the weights file if it cannot be read or is not a DPE generator.
    // kSource needs absolute motion (relative motion's reference frame has no source crop);
    // throws Error otherwise.
    SynthbenchDpe(const std::filesystem::path& weights, MotionMode mode, PasteMode paste_mode,
                  std::filesystem::path dataset_root, DriverCrop driver_crop = DriverCrop::kAuto);

    int size() const;
    MotionMode mode() const { return mode_; }

    // The pair's source: uint8 [H, W, 3] and its true points [468, 2+] in its pixels. `name`
    // (the image's path) is named by errors.
    void set_source(const torch::Tensor& image, const torch::Tensor& points,
                    const std::string& name);

    // The prediction of `task` for the current source, uint8 [H, W, 3] in the source's size:
    // driving image and true points as for set_source; driver_identity indexes the data set's
    // identities (the driving image's person, for the reference frame of relative motion).
    // With `fit_source` and `fit_target` ([468, 2+], the source image's px: where the face's
    // points are and where the edit must put them) the motion code read from the driving image
    // is then fitted to carry those points (engines/dpe/motion_fit.h, with `fit`): the
    // dpe-fitted method, whose points are warp-fitted's. `fit_expression` (same form): the
    // points with the source's pose and the driver's expression, for fit.expression_weight on
    // the 'both' stage.
    torch::Tensor predict(const std::string& task, const torch::Tensor& driving,
                          const torch::Tensor& driving_points, int64_t driver_identity,
                          const std::string& name, const torch::Tensor& fit_source = {},
                          const torch::Tensor& fit_target = {},
                          const engines::dpe::MotionFitOptions& fit = {},
                          const torch::Tensor& fit_expression = {});

    // The `dpe-oracle` method: the motion code read as predict reads it, then fitted to the
    // face of the task's true image `truth` (uint8 [H, W, 3], the source's size; its face is the
    // hull of `truth_points`, [468, 2+] image px, face_psnr's region) in the source's crop
    // (engines::dpe::fit_motion_to_image, with `fit`). It uses the answer, so it is a bound, not
    // a method: how well these decoders render the face with the best code Adam finds per pair.
    torch::Tensor predict_oracle(const std::string& task, const torch::Tensor& driving,
                                 const torch::Tensor& driving_points, int64_t driver_identity,
                                 const std::string& name, const torch::Tensor& truth,
                                 const torch::Tensor& truth_points,
                                 const engines::dpe::MotionFitOptions& fit);

private:
    // The driving image's motion code for `task`: cropped by the driver-crop rule, absolute or
    // relative to the driver's reference.
    torch::Tensor driving_motion(const std::string& task, const torch::Tensor& driving,
                                 const torch::Tensor& driving_points, int64_t driver_identity,
                                 const std::string& name);
    // The source rendered with `motion` for the task's stage and pasted back as the task says.
    torch::Tensor render_and_paste(const std::string& task, const torch::Tensor& motion,
                                   const std::string& name);
    torch::Tensor crop_motion(const torch::Tensor& image, const face::CropTransform& crop);
    const torch::Tensor& reference_motion(int64_t identity);

    std::filesystem::path weights_, dataset_root_;
    engines::dpe::Generator generator_{nullptr};
    MotionMode mode_;
    PasteMode paste_mode_;
    DriverCrop driver_crop_;
    torch::Device device_{torch::kCPU};
    std::map<int, torch::Tensor> reconstructions_;  // stage -> the source rendered unedited
    torch::Tensor source_image_, source_points_, source_motion_;
    face::CropTransform source_crop_;
    engines::dpe::SourceCode source_;
    std::map<int64_t, torch::Tensor> references_;  // driver identity -> reference motion
};

}  // namespace avatar::pipeline
