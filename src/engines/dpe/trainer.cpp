#include "engines/dpe/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "core/progress.h"
#include "engines/dpe/flow_terms.h"
#include "engines/dpe/held_out_pairs.h"
#include "engines/dpe/widen_motion.h"
#include "media/image.h"
#include "nn/state_dict.h"
#include "train/adversarial.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/face_feature_losses.h"

namespace avatar::engines::dpe {
namespace fs = std::filesystem;

DPEConfig compact_config(int64_t size, int64_t width, int64_t max_channels, int64_t motion_dim) {
    check(size >= 8 && size <= 1024 && (size & (size - 1)) == 0, "--size",
          "must be a power of two in [8, 1024], got " + std::to_string(size));
    check(width >= 1 && max_channels >= width, "--width", "need 1 <= width <= max channels");
    check(motion_dim >= 1, "--motion-dim", "must be at least 1, got " + std::to_string(motion_dim));
    // The latent is max_channels wide and holds an orthonormal basis of the motion directions.
    check(max_channels >= motion_dim, "--max-channels",
          "must be at least the number of motion directions (" + std::to_string(motion_dim) +
              "), got " + std::to_string(max_channels));
    DPEConfig config;
    config.size = size;
    config.style_dim = max_channels;
    config.motion_dim = motion_dim;
    int64_t channels = width;
    for (int64_t r = size; r >= 4; r /= 2) {
        config.channels[r] = std::min(channels, max_channels);
        channels *= 2;
    }
    return config;
}

namespace {

constexpr const char* kModelFormat = "avatar-dpe-own-v1";

DPEConfig config_from_json(const nlohmann::json& j) {
    DPEConfig c;
    c.size = j.at("size").get<int64_t>();
    c.style_dim = j.at("style_dim").get<int64_t>();
    c.motion_dim = j.at("motion_dim").get<int64_t>();
    for (const auto& [r, ch] : j.at("channels").items())
        c.channels[std::stoll(r)] = ch.get<int64_t>();
    return c;
}

nlohmann::json options_json(const DpeTrainOptions& o) {
    return {{"model", o.model.to_json()},
            {"data",
             {{"image_size", o.data.image_size},
              {"render_size", o.data.render_size},
              {"identities", o.data.identities},
              {"clip_frames", o.data.clip_frames},
              {"crop_scale", o.data.crop_scale},
              {"seed", std::to_string(o.data.seed)},
              {"photo_textures", o.data.photo_textures},
              {"backgrounds", o.data.backgrounds},
              {"photo_fraction", o.data.photo_fraction},
              {"cross_rule", train::cross_rule_name(o.data.cross_rule)}}},
            {"batch", o.batch},
            {"joint_steps", o.joint_steps},
            {"refine_steps", o.refine_steps},
            {"joint_lr", o.joint_lr},
            {"refine_lr", o.refine_lr},
            {"lambda_perceptual", o.lambda_perceptual},
            {"lambda_expression", o.lambda_expression},
            {"lambda_adversarial", o.lambda_adversarial},
            {"clip_grad_norm", o.clip_grad_norm},
            {"lambda_self_reconstruction", o.lambda_self_reconstruction},
            {"lambda_logits", o.lambda_logits},
            {"logit_margin", o.logit_margin},
            {"r1_gamma", o.r1_gamma},
            {"r1_every", o.r1_every},
            {"repeat_batches", o.repeat_batches},
            {"warmup_steps", o.warmup_steps},
            {"flow_phase_steps", o.flow_phase_steps},
            {"start_as_copy", o.start_as_copy},
            {"adam_beta1", o.adam_beta1},
            {"lambda_flow_points", o.lambda_flow_points},
            {"lambda_rendered", o.lambda_rendered},
            {"cross_identity_fraction", o.cross_identity_fraction},
            {"lambda_motion_code", o.lambda_motion_code},
            {"lambda_expression_points", o.lambda_expression_points},
            {"ema_half_life_images", o.ema_half_life_images},
            {"validation_pairs", o.validation_pairs}};
}

// Restores what shapes the run (architecture, data, batch, loss weights) from a checkpoint's
// options; the step counts stay the caller's, so a run can be extended.
void restore_options(DpeTrainOptions& o, const nlohmann::json& j) {
    o.model = config_from_json(j.at("model"));
    const auto& d = j.at("data");
    o.data.image_size = d.at("image_size").get<int>();
    o.data.render_size = d.at("render_size").get<int>();
    o.data.identities = d.at("identities").get<int>();
    o.data.clip_frames = d.at("clip_frames").get<int>();
    o.data.crop_scale = d.at("crop_scale").get<double>();
    o.data.seed = std::stoull(d.at("seed").get<std::string>());
    // Absent in runs started before photo textures could be trained on: the procedural world.
    o.data.photo_textures = d.value("photo_textures", std::vector<std::string>{});
    o.data.backgrounds = d.value("backgrounds", std::vector<std::string>{});
    o.data.photo_fraction = d.value("photo_fraction", 0.5);
    // Absent in runs started before session 23: the only rule there was.
    o.data.cross_rule = train::parse_cross_rule(d.value("cross_rule", std::string("clip")));
    o.batch = j.at("batch").get<int64_t>();
    o.joint_lr = j.at("joint_lr").get<double>();
    o.refine_lr = j.at("refine_lr").get<double>();
    o.lambda_perceptual = j.at("lambda_perceptual").get<double>();
    o.lambda_expression = j.at("lambda_expression").get<double>();
    o.lambda_adversarial = j.at("lambda_adversarial").get<double>();
    // Absent in runs started before clipping existed: they trained without it.
    o.clip_grad_norm = j.value("clip_grad_norm", 0.0);
    // Absent in runs started before the option existed: they trained without it.
    o.lambda_self_reconstruction = j.value("lambda_self_reconstruction", 0.0);
    o.lambda_logits = j.value("lambda_logits", 0.0);  // absent before the option: off
    o.logit_margin = j.value("logit_margin", 3.0);
    o.r1_gamma = j.at("r1_gamma").get<double>();
    o.r1_every = j.at("r1_every").get<int64_t>();
    o.ema_half_life_images = j.at("ema_half_life_images").get<double>();
    o.repeat_batches = j.value("repeat_batches", int64_t{0});      // absent before the option
    o.warmup_steps = j.value("warmup_steps", int64_t{0});          // absent before the option
    o.flow_phase_steps = j.value("flow_phase_steps", int64_t{0});  // absent before the option
    o.start_as_copy = j.value("start_as_copy", false);
    o.adam_beta1 = j.value("adam_beta1", 0.0);  // absent before the option: StyleGAN2's 0
    o.lambda_flow_points = j.value("lambda_flow_points", 0.0);  // absent before the option: off
    o.lambda_rendered = j.value("lambda_rendered", 0.0);        // absent before the option: off
    o.cross_identity_fraction = j.value("cross_identity_fraction", 0.0);  // absent before: none
    o.lambda_motion_code = j.value("lambda_motion_code", 0.0);  // absent before the option: off
    o.lambda_expression_points = j.value("lambda_expression_points", 0.0);  // likewise
    // The run's own, so that validation.csv's rows stay comparable; runs from before the
    // option take the call's.
    o.validation_pairs = j.value("validation_pairs", o.validation_pairs);
    if (o.joint_steps < 0)
        o.joint_steps = j.at("joint_steps").get<int64_t>();
    if (o.refine_steps < 0)
        o.refine_steps = j.at("refine_steps").get<int64_t>();
}

void validate(const DpeTrainOptions& o) {
    check(!o.output.empty(), "-o", "an output folder is required");
    check(o.batch >= 1 && o.batch <= 1024, "--batch", "must be in [1, 1024]");
    // Negative: the checkpoint's, when resuming (restore_options fills them in).
    const bool steps_from_checkpoint = o.resume && (o.joint_steps < 0 || o.refine_steps < 0);
    check(steps_from_checkpoint ||
              (o.joint_steps >= 0 && o.refine_steps >= 0 && o.joint_steps + o.refine_steps > 0),
          "--steps", "the joint and refinement steps must be >= 0 and not both 0");
    check(o.joint_lr > 0 && o.refine_lr > 0, "--lr", "learning rates must be positive");
    check(o.clip_grad_norm >= 0 && std::isfinite(o.clip_grad_norm), "--clip-grad", "must be >= 0");
    check(o.lambda_perceptual >= 0 && o.lambda_expression >= 0 && o.lambda_adversarial >= 0 &&
              o.lambda_self_reconstruction >= 0 && o.lambda_logits >= 0 &&
              o.lambda_flow_points >= 0 && o.lambda_rendered >= 0 && o.lambda_motion_code >= 0 &&
              o.lambda_expression_points >= 0,
          "--lambda", "loss weights must be >= 0");
    check(o.logit_margin > 0 && std::isfinite(o.logit_margin), "--logit-margin", "must be > 0");
    check(o.r1_every >= 1, "--r1-every", "must be >= 1");
    check(o.repeat_batches >= 0, "--repeat-batches", "must be >= 0");
    check(o.warmup_steps >= 0, "--warmup-steps", "must be >= 0");
    check(o.flow_phase_steps >= 0, "--flow-phase-steps", "must be >= 0");
    check(o.flow_phase_steps == 0 || o.lambda_flow_points > 0, "--flow-phase-steps",
          "fits only the flows to the true motion: it needs --lambda-flow-points > 0");
    check(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "--adam-beta1", "must be in [0, 1)");
    check(o.cross_identity_fraction >= 0 && o.cross_identity_fraction <= 1, "--cross-fraction",
          "must be in [0, 1]");
    check(o.validation_pairs == 0 || (o.validation_pairs >= 2 && o.validation_pairs % 2 == 0),
          "--validation-pairs",
          "must be an even number >= 2 (half within a clip, half across people), or 0 for none");
    check(o.log_every >= 1 && o.sample_every >= 1 && o.checkpoint_every >= 1, "--*-every",
          "intervals must be >= 1");
}

// Which parameters learn in each stage. Stage 2 (the paper's refinement): the motion MLPs
// (mlp, mlp_pose, mlp_exp), the direction basis and the expression generator — dec_pose, which
// is the module the official code runs for expression transfer (generator.h).
bool learns_in_refinement(const std::string& name) {
    for (const char* prefix : {"mlp.", "mlp_pose.", "mlp_exp.", "dir.", "dec_pose."})
        if (name.rfind(prefix, 0) == 0)
            return true;
    return false;
}

std::vector<torch::Tensor> set_stage(Generator& g, int stage) {
    std::vector<torch::Tensor> trainable;
    for (auto& item : g->named_parameters()) {
        const bool learns = stage == 1 || learns_in_refinement(item.key());
        item.value().set_requires_grad(learns);
        if (learns)
            trainable.push_back(item.value());
    }
    return trainable;
}

std::unique_ptr<torch::optim::Adam> make_adam(const std::vector<torch::Tensor>& params, double lr,
                                              double beta1) {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(lr).betas({beta1, 0.99}).eps(1e-8));
}

// Rows of [source | driving | expression | pose | both] for each pair, one PNG.
void write_samples(Generator& ema, const train::ClipPairs& pairs, const fs::path& path) {
    torch::NoGradGuard no_grad;
    ema->eval();
    ema->refresh_basis();
    const auto code = ema->encode(pairs.source);
    const auto d = ema->motion(pairs.driving);
    const auto exp = ema->render(code, d, Stage::kExpression);
    const auto pose = ema->render(code, d, Stage::kPose);
    const auto both = ema->render(code, d, Stage::kBoth);
    const auto rows = torch::cat({pairs.source, pairs.driving, exp, pose, both}, 3);  // [N,3,S,5S]
    const auto grid = torch::cat(rows.unbind(0), 1).unsqueeze(0);                     // [1,3,NS,5S]
    media::write_image(path, media::to_uint8_hwc(grid.clamp(-1, 1)));
}

void export_model(const Generator& ema, const DpeTrainOptions& o, int64_t step,
                  const fs::path& path) {
    nn::save_state(*ema, path,
                   {{"format", kModelFormat},
                    {"config", o.model.to_json().dump()},
                    {"step", std::to_string(step)},
                    {"training", options_json(o).dump()}});
}

const char* const kLogHeader =
    "step,stage,seconds_per_step,rec,per,exp,adv,g_total,d_loss,r1,g_grad_norm,cycle_l1,copy_l1,"
    "max_logit,flow_points,edit_l1,motion_code,flow_points_by_block,expression_points\n";

// Keeps the rows of steps <= `last_step` of a run's CSV log (losses.csv, validation.csv) under
// today's `header` (rows of runs logged before a column existed just lack it).
void truncate_log(const fs::path& path, const char* header, int64_t last_step) {
    std::ifstream in(path);
    if (!in)
        return;
    std::string kept = header, line;
    bool first = true;
    while (std::getline(in, line)) {
        if (!first && std::strtoll(line.c_str(), nullptr, 10) <= last_step)
            kept += line + "\n";
        first = false;
    }
    in.close();
    write_file_atomic(path, kept.data(), kept.size());
}

// A fresh generator starts with zero flows and half-open masks: the ToFlow convolutions'
// weights are zeroed (their gradients are not zero, so they learn). With random weights the
// flows are large from the first step, the warped features are noise, and the generator settles
// on one average face whatever the source (what a first run did for its first 1000 steps);
// starting from the (near-)identity warp, the source's features reach the output at once.
void start_with_identity_flows(Generator& g) {
    torch::NoGradGuard no_grad;
    for (auto& item : g->named_parameters()) {
        const auto& name = item.key();
        if (name.find(".to_flows.") != std::string::npos && name.size() > 12 &&
            name.compare(name.size() - 12, 12, ".conv.weight") == 0)
            item.value().zero_();
    }
}

// The motion-code read-out (ours, --lambda-motion-code): the best linear map R from the change
// of the motion code alpha between two frames of one clip to the change of the face's 468 points
// (grid units). Relative motion at inference adds such changes to the source's code, so the code
// should carry them linearly and the same way for everyone. R has no bias: no change of code must
// mean no motion. Only pairs of one clip count (across identities the points differ by the
// face's shape too).
//
// R is a ridge regression refitted at every step from exponentially decayed sums (a memory of
// about 1 / (1 - kDecay) steps), not a learnt layer: an Adam-fitted read-out (the first version)
// learnt from two or three pairs a step and drifted until it predicted worse than "no motion",
// which made it useless as a probe. Each batch is scored with the fit of the batches before it,
// so the logged error is a held-out one.
class MotionReadoutImpl : public torch::nn::Module {
public:
    explicit MotionReadoutImpl(int64_t motion_dim)
        : xtx_(register_buffer("xtx", torch::zeros({motion_dim, motion_dim}))),
          xty_(register_buffer("xty", torch::zeros({motion_dim, kPoints * 2}))) {}

    // R, [motion_dim, 936]: zero before any pair was seen.
    torch::Tensor fit() const {
        torch::NoGradGuard no_grad;
        const auto a = xtx_.to(torch::kDouble);
        const double scale = a.trace().item<double>() / static_cast<double>(a.size(0));
        if (scale <= 0)
            return torch::zeros_like(xty_);
        const auto ridge = kRidge * scale * torch::eye(a.size(0), a.options());
        return torch::linalg_solve(a + ridge, xty_.to(torch::kDouble)).to(xty_.scalar_type());
    }
    void add(const torch::Tensor& change, const torch::Tensor& moved) {
        torch::NoGradGuard no_grad;
        const auto x = change.detach();
        const auto y = moved.reshape({moved.size(0), -1});
        xtx_.mul_(kDecay).add_(x.t().mm(x));
        xty_.mul_(kDecay).add_(x.t().mm(y));
    }

private:
    static constexpr int64_t kPoints = 468;
    static constexpr double kDecay = 0.99;
    static constexpr double kRidge = 1e-3;  // times the mean eigenvalue of the sums
    torch::Tensor xtx_, xty_;
};
TORCH_MODULE(MotionReadout);

// The read-out's error on this batch's pairs of one clip (their indices `same`; NaN when there
// are none), then the fit takes them in. With `into_generator` the error's gradient reaches the
// codes (R is a constant).
torch::Tensor motion_code_loss(MotionReadout& readout, const torch::Tensor& alpha_S,
                               const torch::Tensor& alpha_D, const train::ClipPairs& batch,
                               const torch::Tensor& same, bool into_generator) {
    if (same.numel() == 0)
        return torch::full({}, std::numeric_limits<double>::quiet_NaN(), alpha_S.options());
    auto change = (alpha_D - alpha_S).index_select(0, same);
    if (!into_generator)
        change = change.detach();
    const auto moved = (batch.driving_points - batch.source_points).index_select(0, same);
    const auto error = (change.mm(readout->fit()).view_as(moved) - moved).abs().mean();
    readout->add(change, moved);
    return error;
}

struct StepLosses {
    double rec = 0, per = 0, exp = 0, adv = 0, total = 0, d = 0, r1 = 0, g_grad_norm = 0;
};

}  // namespace

void start_as_copy(Generator& g) {
    start_with_identity_flows(g);
    torch::NoGradGuard no_grad;
    const auto& config = g->config();
    auto params = g->named_parameters();
    auto param = [&](const std::string& name) {
        const auto* p = params.find(name);
        check(p != nullptr, "start_as_copy", "the generator has no parameter " + name);
        return *p;
    };
    const auto eye = torch::eye(3).reshape({3, 3, 1, 1});
    // EqualConv2d multiplies its weight by 1/sqrt(fan_in) when run: these are the stored values
    // whose effective weights are the identity.
    const double stem_gain = std::sqrt(3.0);
    const double rgb_gain = std::sqrt(static_cast<double>(config.channels.at(config.size)));
    // Stem channel c < 3: sqrt(2) * leaky(x_c + 1) = sqrt(2) * (x_c + 1), as x_c >= -1.
    auto stem = param("enc.net_app.convs.0.0.weight").narrow(0, 0, 3);
    stem.zero_();
    stem.narrow(1, 0, 3).copy_(eye * stem_gain);
    param("enc.net_app.convs.0.1.bias").narrow(1, 0, 3).fill_(1.0);
    // One decoder block per resolution from 8 up to the model's size.
    const int64_t blocks = static_cast<int64_t>(std::log2(static_cast<double>(config.size))) - 2;
    for (const std::string decoder : {"dec_pose", "dec_exp"}) {
        for (int64_t k = 0; k < blocks; ++k) {
            const std::string rgb = decoder + ".to_rgbs." + std::to_string(k);
            param(rgb + ".conv.0.weight").zero_();
            param(rgb + ".conv.1.bias").zero_();
            param(rgb + ".bias").zero_();
        }
        // The warped stem features arrive times the mask (1/2): sqrt(2)/2 * (x + 1). A weight of
        // 1 and the activation's sqrt(2) give x + 1; the ToRGB bias takes the 1 away.
        const std::string finest = decoder + ".to_rgbs." + std::to_string(blocks - 1);
        param(finest + ".conv.0.weight").narrow(1, 0, 3).copy_(eye * rgb_gain);
        param(finest + ".bias").fill_(-1.0);
    }
}

DpeTrainReport train_dpe(DpeTrainOptions o) {
    validate(o);
    // Whatever the caller's grad mode (e.g. a NoGradGuard around inference), training needs it.
    torch::AutoGradMode enable_grad(true);
    const auto start_time = std::chrono::steady_clock::now();
    const fs::path checkpoint_dir = o.output / "checkpoint";
    const bool has_checkpoint = train::checkpoint_exists(checkpoint_dir);
    nlohmann::json saved_state;
    if (has_checkpoint) {
        check(o.resume, o.output.string(),
              "holds a training run already: pass --resume to continue it, or choose another "
              "output folder");
        std::ifstream in(checkpoint_dir / "state.json");
        saved_state = nlohmann::json::parse(in);
        const DpeTrainOptions given = o;
        restore_options(o, saved_state.at("options"));
        validate(o);  // the steps taken from the checkpoint
        if (o.override_losses) {
            o.joint_lr = given.joint_lr;
            o.refine_lr = given.refine_lr;
            o.lambda_perceptual = given.lambda_perceptual;
            o.lambda_expression = given.lambda_expression;
            o.lambda_adversarial = given.lambda_adversarial;
            o.clip_grad_norm = given.clip_grad_norm;
            o.lambda_self_reconstruction = given.lambda_self_reconstruction;
            o.lambda_logits = given.lambda_logits;
            o.logit_margin = given.logit_margin;
            o.warmup_steps = given.warmup_steps;
            o.flow_phase_steps = given.flow_phase_steps;
            o.adam_beta1 = given.adam_beta1;
            o.lambda_flow_points = given.lambda_flow_points;
            o.lambda_rendered = given.lambda_rendered;
            o.cross_identity_fraction = given.cross_identity_fraction;
            o.lambda_motion_code = given.lambda_motion_code;
            o.lambda_expression_points = given.lambda_expression_points;
            o.r1_gamma = given.r1_gamma;
            o.r1_every = given.r1_every;
            o.ema_half_life_images = given.ema_half_life_images;
            spdlog::info("resuming with this call's learning rates and loss weights");
        }
    } else {
        check(!o.resume, o.output.string(), "has no checkpoint to resume from");
    }
    o.data.image_size = static_cast<int>(o.model.size);

    train::SyntheticClipSampler sampler(o.data);
    train::FaceFeatureLosses features;
    // A fresh run's initial weights (the discriminator's too) follow the run's seed, so one
    // command gives one run; a resumed run loads its own.
    torch::manual_seed(o.data.seed);
    Generator g(o.model), ema(o.model);
    if (!o.init.empty()) {
        check(!has_checkpoint, "--init", "cannot be combined with --resume");
        load_widening_motion(g, SafetensorsFile::open(o.init));
    }
    // Created once the data and the initial weights are known to load: a refused run leaves no
    // empty folder behind.
    fs::create_directories(o.output / "samples");
    if (o.init.empty() && !has_checkpoint) {
        start_with_identity_flows(g);
        if (o.start_as_copy)
            start_as_copy(g);
    }
    train::copy_parameters(*ema, *g);
    ema->eval();
    for (auto& p : ema->parameters())
        p.set_requires_grad(false);
    // The discriminator mirrors the generator's channel table.
    train::Discriminator disc(o.model.size, o.model.channels);
    auto d_optimizer = make_adam(disc->parameters(), o.joint_lr, 0.0);
    // The motion-code read-out is fitted at every weight (a probe at 0).
    MotionReadout readout(o.model.motion_dim);

    int64_t step = 0;
    int stage = 0;
    std::unique_ptr<torch::optim::Adam> g_optimizer;
    auto enter_stage = [&](int new_stage) {
        stage = new_stage;
        g_optimizer =
            make_adam(set_stage(g, stage), stage == 1 ? o.joint_lr : o.refine_lr, o.adam_beta1);
    };
    const int64_t total_steps = o.joint_steps + o.refine_steps;
    enter_stage(o.joint_steps > 0 ? 1 : 2);
    // Checkpoints of runs from before the read-out lack it; it then starts with an empty fit.
    const auto checkpoint_parts = [&](bool with_readout) {
        train::CheckpointParts parts{
            {{"generator", g.get()}, {"generator_ema", ema.get()}, {"discriminator", disc.get()}},
            {{"generator_optimizer", g_optimizer.get()},
             {"discriminator_optimizer", d_optimizer.get()}}};
        if (with_readout)
            parts.modules.emplace_back("motion_readout_fit", readout.get());
        return parts;
    };
    if (has_checkpoint) {
        step = saved_state.at("step").get<int64_t>();
        enter_stage(saved_state.at("stage").get<int>());
        const bool has_readout = fs::exists(checkpoint_dir / "motion_readout_fit.safetensors");
        train::load_checkpoint(checkpoint_dir, checkpoint_parts(has_readout));
        if (!has_readout)
            spdlog::info("the checkpoint has no motion-code read-out: its fit starts empty");
        if (o.override_losses) {
            // The optimizer archives hold their learning rates and betas too.
            auto set_rate = [](torch::optim::Adam& adam, double lr, double beta1) {
                for (auto& group : adam.param_groups())
                    static_cast<torch::optim::AdamOptions&>(group.options())
                        .lr(lr)
                        .betas({beta1, 0.99});
            };
            set_rate(*g_optimizer, stage == 1 ? o.joint_lr : o.refine_lr, o.adam_beta1);
            set_rate(*d_optimizer, o.joint_lr, 0.0);
        }
        spdlog::info("resuming {} at step {} (stage {})", o.output.string(), step, stage);
    }
    DpeTrainReport report;
    report.first_step = step;
    report.model = o.output / "model.safetensors";

    // Fixed pairs for the sample grids: four across identities, two within a clip.
    train::ClipPairs preview;
    {
        const auto cross = sampler.cross_identity(1000000007, 4);
        const auto same = sampler.same_identity(1000000007, 2);
        preview.source = torch::cat({cross.source, same.source});
        preview.driving = torch::cat({cross.driving, same.driving});
    }
    // Rows past the checkpoint were logged by the stopped run and are about to be redone.
    if (has_checkpoint)
        truncate_log(o.output / "losses.csv", kLogHeader, step);
    const bool new_log = !fs::exists(o.output / "losses.csv");
    std::ofstream log(o.output / "losses.csv", std::ios::app);
    if (new_log)
        log << kLogHeader;

    // The held-out pairs' scores: a row for the starting weights, then one per checkpoint.
    std::optional<HeldOutPairs> held_out;
    std::optional<std::ofstream> validation_log;
    if (o.validation_pairs > 0) {
        held_out.emplace(sampler, o.validation_pairs);
        const auto path = o.output / "validation.csv";
        if (has_checkpoint)
            truncate_log(path, HeldOutPairs::csv_header(), step);
        const bool new_validation = !fs::exists(path);
        validation_log.emplace(path, std::ios::app);
        if (new_validation)
            *validation_log << HeldOutPairs::csv_header() << held_out->score(ema, step)
                            << std::flush;
    }

    auto save = [&](int64_t done) {
        export_model(ema, o, done, report.model);
        if (held_out)
            *validation_log << held_out->score(ema, done) << std::flush;
        train::save_checkpoint(checkpoint_dir, checkpoint_parts(true),
                               {{"step", done}, {"stage", stage}, {"options", options_json(o)}});
    };

    int64_t end_step = total_steps;
    if (o.max_steps_this_run > 0)
        end_step = std::min(end_step, step + o.max_steps_this_run);
    std::optional<Progress> progress;
    if (o.show_progress && end_step > step)
        progress.emplace("train dpe", end_step - step, "steps");
    auto last_tick = std::chrono::steady_clock::now();
    int64_t last_logged = step;
    StepLosses l;
    for (; step < end_step; ++step) {
        if (stage == 1 && step >= o.joint_steps) {
            enter_stage(2);
            spdlog::info("step {}: stage 2, refining the expression generator", step);
        }
        g->train();
        const auto batch = sampler.mixed(o.repeat_batches > 0 ? step % o.repeat_batches : step,
                                         o.batch, o.cross_identity_fraction);
        const auto& S = batch.source;
        const auto& D = batch.driving;

        // --- generator step: the bidirectional cycle ---------------------------------------
        for (auto& p : disc->parameters())
            p.set_requires_grad(false);
        // Every render's intermediates are gathered (by reference: autograd keeps them alive
        // for the backward pass anyway) to reach the flow and mask logits, logged and penalised,
        // and the flow grids; the renders below come in the order of enum Render.
        std::map<std::string, torch::Tensor> traced;
        const auto trace = [&](Render render) { return Trace(&traced, trace_prefix(render)); };
        const auto e = [&](const SourceCode& c, const torch::Tensor& d, Render render) {
            return g->render(c, d, Stage::kExpression, trace(render));
        };
        const auto p = [&](const SourceCode& c, const torch::Tensor& d, Render render) {
            return g->render(c, d, Stage::kPose, trace(render));
        };
        const auto cS = g->encode(S);
        const auto alpha_S = g->alpha(cS.wa);
        const auto dS = g->directions(alpha_S);
        const auto eSS = e(cS, dS, Render::kSelfExp);  // self-reconstructions
        const auto pSS = p(cS, dS, Render::kSelfPose);
        const auto self_l1 = (eSS - S).abs().mean() + (pSS - S).abs().mean();
        const bool warmup = stage == 1 && step < o.warmup_steps;
        const bool flow_phase = stage == 1 && !warmup && step < o.warmup_steps + o.flow_phase_steps;
        const bool adversarial = o.lambda_adversarial > 0 && !warmup && !flow_phase;
        torch::Tensor rec, per, exp, adv, cycle_l1, edit_l1, motion_code, S2, D2;
        if (warmup) {
            // Only the self-reconstructions: the encoder-to-image path learns to give the
            // source back before the cycle asks it to move anything.
            rec = self_l1;
            per = features.perceptual_sum({{eSS, S}, {pSS, S}});
            exp = torch::zeros({}, S.options());
            cycle_l1 = torch::full({}, std::numeric_limits<double>::quiet_NaN(), S.options());
            edit_l1 = cycle_l1;
            motion_code = cycle_l1;
        } else {
            const auto cD = g->encode(D);
            const auto alpha_D = g->alpha(cD.wa);
            const auto dD = g->directions(alpha_D);
            // The pairs of one clip: S' = D' and the motion-code read-out hold only for them
            // (across, they are two people).
            const auto same = batch.same_identity.nonzero().flatten();
            motion_code =
                motion_code_loss(readout, alpha_S, alpha_D, batch, same, o.lambda_motion_code > 0);
            const auto S1 = e(cS, dD, Render::kS1);  // S'  = e(S, D)
            const auto D1 = p(cD, dS, Render::kD1);  // D'  = p(D, S)
            // The rendered truth of S' and D' (ours): logged always, a loss with its weight.
            edit_l1 = 0.5 * ((S1 - batch.source_edit).abs().mean() +
                             (D1 - batch.driving_edit).abs().mean());
            if (flow_phase) {
                // Only the motion: the flow-point loss below holds the flows; the L1 terms keep
                // the image from drifting while nothing else looks at it.
                rec = o.lambda_self_reconstruction * self_l1;
                per = torch::zeros({}, S.options());
                exp = per;
                cycle_l1 = torch::full({}, std::numeric_limits<double>::quiet_NaN(), S.options());
            } else {
                S2 = p(g->encode(S1), dD, Render::kS2);  // S'' = p(S', D)
                D2 = e(g->encode(D1), dS, Render::kD2);  // D'' = e(D', S)
                // The cycle's targets: D and S within a clip, rendered across identities.
                const auto& target_S2 = batch.source_cycle;
                const auto& target_D2 = batch.driving_cycle;
                cycle_l1 = (S2 - target_S2).abs().mean();
                const bool all_same = same.numel() == S.size(0);
                const auto S1_same = all_same ? S1 : S1.index_select(0, same);
                const auto D1_same = all_same ? D1 : D1.index_select(0, same);
                const auto consistency = same.numel() > 0 ? (S1_same - D1_same).abs().mean()
                                                          : torch::zeros({}, S.options());
                rec = cycle_l1 + (D2 - target_D2).abs().mean() + consistency;
                if (o.lambda_self_reconstruction > 0)
                    rec = rec + o.lambda_self_reconstruction * self_l1;
                // Batched: the real frames' features are computed once, without autograd.
                if (all_same) {
                    per = features.perceptual_sum(
                        {{S2, target_S2}, {D2, target_D2}, {S1, D1}, {eSS, S}, {pSS, S}});
                } else {
                    // The batched sum takes pairs of one batch size: the within-clip pair apart.
                    per = features.perceptual_sum(
                        {{S2, target_S2}, {D2, target_D2}, {eSS, S}, {pSS, S}});
                    if (same.numel() > 0)
                        per = per + features.perceptual_sum({{S1_same, D1_same}});
                }
                exp = features.expression_sum({{S1, D}, {D1, D}});
            }
            if (o.lambda_rendered > 0)
                rec = rec + (2.0 * o.lambda_rendered) * edit_l1;
        }
        // Without the GAN term (--lambda-adversarial 0, e.g. a reconstruction warm-up) the
        // discriminator is neither run nor trained: it would cost a third of the step for nothing.
        adv = adversarial ? train::generator_adversarial_loss(disc->forward(torch::cat({S2, D2})))
                          : torch::zeros({}, S.options());
        auto total = rec + o.lambda_perceptual * per + o.lambda_expression * exp +
                     o.lambda_adversarial * adv;
        const auto logits = flow_logits(traced);
        if (o.lambda_logits > 0)
            total = total + o.lambda_logits * logit_penalty(logits, o.logit_margin);
        // Logged whatever its weight: how far the flows are from the true motion.
        std::vector<torch::Tensor> flow_points_by_block;
        const auto flow_terms = warmup       ? FlowTerms::kSelf
                                : flow_phase ? FlowTerms::kFirstEdits
                                             : FlowTerms::kCycle;
        const auto flow_points = flow_point_loss(traced, batch, flow_terms, &flow_points_by_block);
        if (o.lambda_flow_points > 0)
            total = total + o.lambda_flow_points * flow_points;
        // Logged whatever its weight: how far the expression edits are from the true motion.
        const auto expression_points = expression_point_loss(traced, batch, flow_terms);
        if (o.lambda_expression_points > 0 && flow_terms != FlowTerms::kSelf)
            total = total + o.lambda_expression_points * expression_points;
        if (o.lambda_motion_code > 0 && std::isfinite(motion_code.item<double>()))
            total = total + o.lambda_motion_code * motion_code;
        check(total.requires_grad(), "train dpe", "no trainable parameter reaches the loss");
        g_optimizer->zero_grad();
        total.backward();
        // The total gradient norm, logged; clipped to --clip-grad when that is set. Adam with
        // beta1 = 0 has no momentum to damp one bad batch: runs collapsed within ten steps to grey
        // blobs that they never left (docs/training.md).
        const double g_grad_norm = torch::nn::utils::clip_grad_norm_(
            g->parameters(),
            o.clip_grad_norm > 0 ? o.clip_grad_norm : std::numeric_limits<double>::infinity());
        check(std::isfinite(g_grad_norm), o.output.string(),
              "the generator's gradient is not finite at step " + std::to_string(step) +
                  " (try a lower --lr or --clip-grad); the last checkpoint is kept");
        g_optimizer->step();
        train::update_ema(*ema, *g,
                          train::ema_beta(o.batch, o.ema_half_life_images,
                                          static_cast<double>((step + 1) * o.batch)));

        // --- discriminator step -------------------------------------------------------------
        auto d_loss = torch::zeros({});
        double r1_value = adversarial ? l.r1 : 0.0;
        if (adversarial) {
            for (auto& param : disc->parameters())
                param.set_requires_grad(true);
            const auto real = torch::cat({S, D});
            const auto fake = torch::cat({S2, D2}).detach();
            d_loss = train::discriminator_loss(disc->forward(real), disc->forward(fake));
            if (o.r1_gamma > 0 && step % o.r1_every == 0) {
                const auto real_r1 = real.detach().requires_grad_(true);
                const auto r1 = train::r1_penalty(disc->forward(real_r1), real_r1);
                d_loss = d_loss + (0.5 * o.r1_gamma * static_cast<double>(o.r1_every)) * r1;
                r1_value = r1.item<double>();
            }
            check(d_loss.requires_grad(), "train dpe", "the discriminator loss has no gradient");
            d_optimizer->zero_grad();
            d_loss.backward();
            d_optimizer->step();
        }

        l = {rec.item<double>(),   per.item<double>(),    exp.item<double>(), adv.item<double>(),
             total.item<double>(), d_loss.item<double>(), r1_value,           g_grad_norm};
        check(std::isfinite(l.total) && std::isfinite(l.d), o.output.string(),
              "the loss diverged at step " + std::to_string(step) +
                  " (try a lower --lr or --lambda-adversarial); the last checkpoint is kept");
        const int64_t done = step + 1;
        if (done % o.log_every == 0 || done == end_step) {
            const auto now = std::chrono::steady_clock::now();
            const double per_step = std::chrono::duration<double>(now - last_tick).count() /
                                    static_cast<double>(done - last_logged);
            last_tick = now;
            last_logged = done;
            // The diagnostics are read only for the rows that log them.
            const double copy_l1 = (S - batch.source_cycle).abs().mean().item<double>();
            char line[320];
            std::snprintf(line, sizeof(line),
                          "%lld,%d,%.3f,%.5f,%.5f,%.6f,%.5f,%.5f,%.5f,%.5f,%.5g,"
                          "%.5f,%.5f,%.4g,%.5f,%.5f,%.5f,",
                          static_cast<long long>(done), stage, per_step, l.rec, l.per, l.exp, l.adv,
                          l.total, l.d, l.r1, l.g_grad_norm, cycle_l1.item<double>(), copy_l1,
                          max_abs_logit(logits), flow_points.item<double>(), edit_l1.item<double>(),
                          motion_code.item<double>());
            log << line;
            for (size_t k = 0; k < flow_points_by_block.size(); ++k) {
                std::snprintf(line, sizeof(line), "%s%.5f", k > 0 ? ";" : "",
                              flow_points_by_block[k].item<double>());
                log << line;
            }
            std::snprintf(line, sizeof(line), ",%.5f", expression_points.item<double>());
            log << line << "\n" << std::flush;
        }
        if (done % o.sample_every == 0 || done == total_steps) {
            char name[64];
            std::snprintf(name, sizeof(name), "step_%07lld.png", static_cast<long long>(done));
            write_samples(ema, preview, o.output / "samples" / name);
        }
        if (done % o.checkpoint_every == 0 || done == end_step)
            save(done);
        if (progress)
            progress->advance();
    }
    if (progress)
        progress->finish();
    report.last_step = step;
    report.last_loss = l.total;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    return report;
}

}  // namespace avatar::engines::dpe
