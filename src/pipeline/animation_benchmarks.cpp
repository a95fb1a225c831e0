#include "pipeline/animation_benchmarks.h"

#include "engines/dpe/generator.h"
#include "metrics/benchmark.h"
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
