#include "pipeline/synthbench_dpe.h"

#include <array>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors.h"
#include "media/frame_source.h"
#include "media/motion_file.h"
#include "pipeline/motion_steering.h"

namespace avatar::pipeline {
namespace {
namespace fs = std::filesystem;
namespace dpe = engines::dpe;

// The extent (x0, y0, x1, y1) of points [N, 2+] in pixels: the box the tracker would give from
// FaceMesh's points, here from the true ones.
std::array<double, 4> points_box(const torch::Tensor& points) {
    const auto xy = points.slice(1, 0, 2).to(torch::kFloat64);
    const auto lo = std::get<0>(xy.min(0)), hi = std::get<0>(xy.max(0));
    return {lo[0].item<double>(), lo[1].item<double>(), hi[0].item<double>(), hi[1].item<double>()};
}

// Runs `work`, turning a LibTorch or other failure into an Error naming `subject` (the file whose
// image was being processed), so the CLI prints one line that says where it happened.
template <typename Work>
auto naming(const std::string& subject, Work&& work) {
    try {
        return work();
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        std::string what = e.what();
        // LibTorch appends a C++ stack trace after the first line; the first line is the message.
        what = what.substr(0, what.find('\n'));
        throw Error(subject, "DPE failed: " + what);
    }
}

}  // namespace

dpe::Stage synthbench_dpe_stage(const std::string& task) {
    if (task == "expression_only")
        return dpe::Stage::kExpression;
    if (task == "pose_only")
        return dpe::Stage::kPose;
    check(task == "reenact" || task == "self_reenact", task, "not a synthbench task");
    return dpe::Stage::kBoth;
}

DriverCrop parse_driver_crop(const std::string& name) {
    if (name == "auto")
        return DriverCrop::kAuto;
    if (name == "own")
        return DriverCrop::kOwn;
    check(name == "source", "--dpe-driver-crop", "'" + name + "' is not one of auto, own, source");
    return DriverCrop::kSource;
}

SynthbenchDpe::SynthbenchDpe(const fs::path& weights, MotionMode mode, PasteMode paste_mode,
                             fs::path dataset_root, DriverCrop driver_crop)
    : weights_(weights),
      dataset_root_(std::move(dataset_root)),
      mode_(mode),
      paste_mode_(paste_mode),
      driver_crop_(driver_crop) {
    // Relative motion subtracts the driver's reference frame, cut with a crop of its own: the
    // driving frame must be cut the same way, or the change includes the two crops' offset.
    check(driver_crop_ != DriverCrop::kSource || mode_ == MotionMode::kAbsolute,
          "--dpe-driver-crop", "source needs --dpe-motion absolute");
    check(fs::is_regular_file(weights_), weights_.string(), "not found (--dpe-weights)");
    generator_ = naming(weights_.string(), [&] {
        const auto file = SafetensorsFile::open(weights_);
        return dpe::load_dpe_generator(file);
    });
    generator_->eval();
    device_ = generator_->parameters().front().device();
}

int SynthbenchDpe::size() const {
    return static_cast<int>(generator_->config().size);
}

torch::Tensor SynthbenchDpe::crop_motion(const torch::Tensor& image,
                                         const face::CropTransform& crop) {
    torch::NoGradGuard no_grad;
    return generator_->motion(crop_input(image, crop).to(device_));
}

void SynthbenchDpe::set_source(const torch::Tensor& image, const torch::Tensor& points,
                               const std::string& name) {
    naming(name, [&] {
        torch::NoGradGuard no_grad;
        source_image_ = image;
        reconstructions_.clear();
        source_points_ = points;
        source_crop_ = face_crop(points_box(points), size());
        source_ = generator_->encode(crop_input(image, source_crop_).to(device_));
        // From the code just computed, as DpeAnimator::set_source: motion() would encode again.
        source_motion_ = generator_->directions(generator_->alpha(source_.wa));
        return 0;
    });
}

const torch::Tensor& SynthbenchDpe::reference_motion(int64_t identity) {
    const auto known = references_.find(identity);
    if (known != references_.end())
        return known->second;
    const fs::path manifest_path = dataset_root_ / "synth.json";
    std::ifstream in(manifest_path);
    check(in.good(), manifest_path.string(),
          "not found: relative motion takes its reference from the driver's own video in the "
          "data set (or pass --dpe-motion absolute)");
    nlohmann::json manifest;
    try {
        in >> manifest;
    } catch (const nlohmann::json::exception& e) {
        throw Error(manifest_path.string(), std::string("not valid JSON: ") + e.what());
    }
    const auto& items = manifest.at("items");
    check(identity >= 0 && identity < static_cast<int64_t>(items.size()), manifest_path.string(),
          "has no identity " + std::to_string(identity));
    const auto& item = items[static_cast<size_t>(identity)];
    const fs::path video = dataset_root_ / item.at("video").get<std::string>();
    const fs::path motion_path = dataset_root_ / item.at("motion").get<std::string>();
    // The first frame and the box of its true points (the motion file's box channel is the
    // extent of the rendered 468 points, the same box points_box gives).
    media::FrameSource frames(video, 1);
    const auto first = frames.next();
    check(first.has_value(), video.string(), "no frames");
    const auto motion = media::read_motion(motion_path);
    const auto box_channel = motion.channels.find(media::channel::kBox);
    check(box_channel != motion.channels.end(), motion_path.string(), "has no box channel");
    const auto b = box_channel->second[0].to(torch::kFloat64);
    const std::array<double, 4> box = {b[0].item<double>(), b[1].item<double>(),
                                       b[2].item<double>(), b[3].item<double>()};
    auto d = naming(video.string(), [&] { return crop_motion(*first, face_crop(box, size())); });
    return references_.emplace(identity, d).first->second;
}

torch::Tensor SynthbenchDpe::driving_motion(const std::string& task, const torch::Tensor& driving,
                                            const torch::Tensor& driving_points,
                                            int64_t driver_identity, const std::string& name) {
    check(source_.wa.defined(), "SynthbenchDpe", "no source (set_source)");
    const bool source_crop = driver_crop_ == DriverCrop::kSource ||
                             (driver_crop_ == DriverCrop::kAuto && task == "self_reenact" &&
                              mode_ == MotionMode::kAbsolute);
    const auto d = naming(name, [&] {
        return crop_motion(
            driving, source_crop ? source_crop_ : face_crop(points_box(driving_points), size()));
    });
    return mode_ == MotionMode::kAbsolute
               ? d
               : relative_motion(source_motion_, d, reference_motion(driver_identity));
}

torch::Tensor SynthbenchDpe::render_and_paste(const std::string& task, const torch::Tensor& motion,
                                              const std::string& name) {
    const auto stage = synthbench_dpe_stage(task);
    return naming(name, [&] {
        torch::NoGradGuard no_grad;
        const auto rendered = generator_->render(source_, motion, stage);
        torch::Tensor reconstruction;
        if (resolve_paste_mode(paste_mode_, stage) == PasteMode::kDifference) {
            auto& cached = reconstructions_[static_cast<int>(stage)];
            if (!cached.defined())
                cached = generator_->render(source_, source_motion_, stage);
            reconstruction = cached;
        }
        return paste_synthbench_crop(task, paste_mode_, source_image_, source_points_, source_crop_,
                                     rendered, reconstruction);
    });
}

torch::Tensor SynthbenchDpe::predict(const std::string& task, const torch::Tensor& driving,
                                     const torch::Tensor& driving_points, int64_t driver_identity,
                                     const std::string& name, const torch::Tensor& fit_source,
                                     const torch::Tensor& fit_target,
                                     const dpe::MotionFitOptions& fit,
                                     const torch::Tensor& fit_expression) {
    check(fit_source.defined() == fit_target.defined(), "SynthbenchDpe",
          "a motion fit needs both the source's and the target's points");
    const auto stage = synthbench_dpe_stage(task);
    auto motion = driving_motion(task, driving, driving_points, driver_identity, name);
    if (fit_source.defined())
        motion = naming(name, [&] {
            return dpe::fit_motion_to_points(
                generator_, source_, motion, stage,
                motion_fit_points(source_crop_, fit_source).to(device_),
                motion_fit_points(source_crop_, fit_target).to(device_), fit,
                fit_expression.defined()
                    ? motion_fit_points(source_crop_, fit_expression).to(device_)
                    : torch::Tensor());
        });
    return render_and_paste(task, motion, name);
}

torch::Tensor SynthbenchDpe::predict_oracle(const std::string& task, const torch::Tensor& driving,
                                            const torch::Tensor& driving_points,
                                            int64_t driver_identity, const std::string& name,
                                            const torch::Tensor& truth,
                                            const torch::Tensor& truth_points,
                                            const dpe::MotionFitOptions& fit) {
    const auto stage = synthbench_dpe_stage(task);
    const auto read = driving_motion(task, driving, driving_points, driver_identity, name);
    // The answer as the generator would render it (the truth in the source's crop), scored on
    // its face: the hull of the truth's points, as face_psnr scores it.
    const auto face =
        face_region_mask(truth_points, source_crop_, 0.0, 0.0).view({1, 1, size(), size()});
    const auto motion = naming(name, [&] {
        return dpe::fit_motion_to_image(generator_, source_, read, stage,
                                        crop_input(truth, source_crop_).to(device_), fit,
                                        face.to(device_));
    });
    return render_and_paste(task, motion, name);
}

torch::Tensor paste_synthbench_crop(const std::string& task, PasteMode mode,
                                    const torch::Tensor& source, const torch::Tensor& source_points,
                                    const face::CropTransform& crop, const torch::Tensor& rendered,
                                    const torch::Tensor& reconstruction) {
    const auto stage = synthbench_dpe_stage(task);
    // An expression edit leaves the head where it is: only the face is replaced, hair, neck
    // and background stay the source's exactly (PasteRegion::kAuto for exp).
    const auto region =
        stage == dpe::Stage::kExpression ? face_region_mask(source_points, crop) : torch::Tensor();
    if (resolve_paste_mode(mode, stage) == PasteMode::kDifference)
        return paste_difference(source, rendered, reconstruction, crop, PasteOptions{}, region);
    return paste_crop(source, rendered, crop, PasteOptions{}, region);
}

torch::Tensor synthbench_ceiling(const std::string& task, PasteMode mode,
                                 const torch::Tensor& source, const torch::Tensor& source_points,
                                 const torch::Tensor& truth, int size) {
    torch::NoGradGuard no_grad;
    const auto crop = face_crop(points_box(source_points), size);
    // A perfect generator renders the truth, and the source itself as its reconstruction.
    return paste_synthbench_crop(task, mode, source, source_points, crop, crop_input(truth, crop),
                                 crop_input(source, crop));
}

}  // namespace avatar::pipeline
