#include "pipeline/animation_benchmarks.h"

#include <functional>
#include <memory>
#include <string>

#include "core/model_registry.h"
#include "core/safetensors.h"
#include "engines/dpe/generator.h"
#include "face/face_model.h"
#include "metrics/benchmark.h"
#include "pipeline/motion_steering.h"
#include "pipeline/portrait_animation.h"

namespace avatar::pipeline {
namespace {
namespace dpe = engines::dpe;

// Official-size random weights (69 M parameters) cost what trained ones do; built once.
dpe::Generator official_generator() {
    static dpe::Generator generator = [] {
        torch::manual_seed(0);
        dpe::Generator g(dpe::DPEConfig::official());
        g->eval();
        return g;
    }();
    return generator;
}

// A 1280x720 frame with a 300-pixel face box near the middle: the crop is 510 pixels square,
// resampled to 256 and pasted back over the same region, as for a typical HD talking head.
struct Scene {
    torch::Tensor frame;
    face::CropTransform crop;
};

Scene hd_scene() {
    torch::manual_seed(1);
    Scene s;
    s.frame = torch::randint(0, 256, {720, 1280, 3}, torch::kUInt8);
    s.crop = face_crop({490.0, 180.0, 790.0, 480.0}, 256);
    return s;
}

// The face model's 468 points ([468, 3], image px) of a face in a 1280x720 frame, turned by
// `yaw` and with every expression mode at `expression`: what FaceMesh gives, without tracking.
torch::Tensor hd_face_points(double yaw, double expression) {
    const auto& model = face::face_model();
    const auto pose = torch::tensor({{0.0, yaw, 0.0, 640.0, 330.0, 0.0, 20.0}}, torch::kFloat64);
    return face::project_face(
        pose, torch::zeros({model.identity_count()}, torch::kFloat64),
        torch::full({1, model.expression_count()}, expression, torch::kFloat64))[0];
}

// One `avatar animate --transfer both [--fit-motion steps]` driving frame with the shipped
// model: the first driving frame (the reference of relative motion) is done in the setup; the
// timed frame turns and smiles away from it.
std::function<void()> shipped_model_frame(int steps) {
    const auto file = SafetensorsFile::open(ModelRegistry::instance().resolve_weights("dpe-own"));
    auto animator = std::make_shared<DpeAnimator>(engines::dpe::load_dpe_generator(file),
                                                  dpe::Stage::kBoth, MotionMode::kRelative);
    const auto source = hd_scene();
    const auto crop = source.crop.resized(animator->size());
    animator->set_source(crop_input(source.frame, crop));
    std::shared_ptr<MotionSteering> steering;
    const auto driving = hd_scene();
    const auto driving_crop = driving.crop.resized(animator->size());
    const auto motion_of_frame = [animator, driving, driving_crop] {
        return animator->motion_for(
            animator->driving_motion(crop_input(driving.frame, driving_crop)));
    };
    if (steps > 0) {
        SteeringOptions options;
        options.fit.steps = steps;
        steering =
            std::make_shared<MotionSteering>(MotionMode::kRelative, dpe::Stage::kBoth, options);
        steering->set_source(hd_face_points(0.0, 0.1).to(torch::kFloat32), crop);
        steering->steer(*animator, motion_of_frame(), hd_face_points(0.0, 0.1).to(torch::kFloat32));
    } else {
        motion_of_frame();
    }
    const auto driving_mesh = hd_face_points(0.3, 0.4).to(torch::kFloat32);
    AnimationOptions options;
    options.stage = dpe::Stage::kBoth;
    return [animator, steering, motion_of_frame, source, crop, driving_mesh, options] {
        auto motion = motion_of_frame();
        if (steering)
            motion = steering->steer(*animator, motion, driving_mesh);
        paste_rendered(*animator, source.frame, animator->render(motion), crop, options);
    };
}

}  // namespace

void register_animation_benchmarks() {
    auto& benches = metrics::BenchmarkRegistry::instance();
    for (const auto& [stage_name, stage] : std::vector<std::pair<std::string, dpe::Stage>>{
             {"exp", dpe::Stage::kExpression}, {"both", dpe::Stage::kBoth}}) {
        const dpe::Stage st = stage;
        benches.add(
            {"dpe.animate.frame." + stage_name,
             "avatar animate per driving frame, stage '" + stage_name +
                 "', relative motion: crop a 720p driving frame to 256, motion, render, paste "
                 "back into a 720p source as the command does by default (exp: the difference "
                 "from the source's reconstruction, computed beforehand; both: the pixels with a "
                 "Lab colour match; tracking excluded; source encoded once beforehand)",
             "frame",
             [st] {
                 auto animator =
                     std::make_shared<DpeAnimator>(official_generator(), st, MotionMode::kRelative);
                 const auto source = hd_scene();
                 animator->set_source(crop_input(source.frame, source.crop));
                 AnimationOptions options;
                 options.stage = st;
                 // A still source's reconstruction is made once, before the first frame.
                 if (resolve_paste_mode(options.paste_mode, st) == PasteMode::kDifference)
                     animator->reconstruction();
                 const auto driving = hd_scene();
                 return std::function<void()>([animator, source, driving, options] {
                     const auto rendered =
                         animator->animate(crop_input(driving.frame, driving.crop));
                     paste_rendered(*animator, source.frame, rendered, source.crop, options);
                 });
             },
             std::nullopt});
    }
    // The shipped model with and without landmark steering, in one run for the ratio.
    for (const int steps : {0, 10, 40}) {
        const auto suffix = steps > 0 ? ".fit" + std::to_string(steps) : std::string();
        benches.add(
            {"dpe.animate.own.frame.both" + suffix,
             "avatar animate --transfer both" +
                 (steps > 0 ? " --fit-motion " + std::to_string(steps) : std::string()) +
                 " per driving frame with the shipped model (dpe-own, 128x128), relative motion: "
                 "motion, " +
                 (steps > 0 ? "the driving face's face-model fit and retarget, the motion fit "
                              "to the landmarks, "
                            : "") +
                 "render, paste back into a 720p source (tracking excluded; the source prepared "
                 "once beforehand)",
             "frame", [steps] { return shipped_model_frame(steps); }, std::nullopt});
    }
    benches.add(
        {"dpe.edit_video.frame",
         "avatar edit-video per frame (stage 'exp', relative motion): crop the 720p source and "
         "driving frames, encode the source frame and its motion, driving motion, render, render "
         "the source's reconstruction and paste the difference back, as the command does by "
         "default (tracking excluded)",
         "frame",
         [] {
             auto animator = std::make_shared<DpeAnimator>(
                 official_generator(), dpe::Stage::kExpression, MotionMode::kRelative);
             const auto source = hd_scene();
             const auto driving = hd_scene();
             AnimationOptions options;  // stage exp, paste mode auto: the difference
             return std::function<void()>([animator, source, driving, options] {
                 animator->set_source(crop_input(source.frame, source.crop));
                 const auto rendered = animator->animate(crop_input(driving.frame, driving.crop));
                 paste_rendered(*animator, source.frame, rendered, source.crop, options);
             });
         },
         std::nullopt});
}

}  // namespace avatar::pipeline
