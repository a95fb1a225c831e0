// avatar train -m dpe -o DIR: trains an engine on the synthetic world (engines/dpe/trainer.h,
// docs/training.md). Long runs checkpoint regularly; --resume continues one exactly.
#include <cstdio>
#include <string>

#include "apps/avatar/commands.h"
#include "core/error.h"
#include "engines/dpe/trainer.h"
#include "train/synthetic_clips.h"

namespace avatar::cli {
namespace {

struct TrainCliOptions {
    std::string model = "dpe";
    std::string output;
    int64_t size = 64;
    int64_t width = 32;
    int64_t max_channels = 128;
    int64_t motion_dim = 20;
    uint64_t seed = 1;
    int64_t identities = 100000;
    std::vector<std::string> photo_textures, backgrounds;
    double photo_fraction = 0.5;
    std::string cross_rule = "clip";
    engines::dpe::DpeTrainOptions train;
};

int run_train(TrainCliOptions o, const GlobalOptions& global, bool steps_given,
              bool refine_steps_given) {
    check(o.model == "dpe", "-m", "'" + o.model + "' cannot be trained yet (dpe)");
    o.train.output = o.output;
    o.train.model = engines::dpe::compact_config(o.size, o.width, o.max_channels, o.motion_dim);
    o.train.data.seed = o.seed;
    o.train.data.identities = static_cast<int>(o.identities);
    o.train.data.photo_textures = o.photo_textures;
    o.train.data.backgrounds = o.backgrounds;
    o.train.data.photo_fraction = o.photo_fraction;
    o.train.data.cross_rule = train::parse_cross_rule(o.cross_rule);
    o.train.show_progress = !global.quiet && !global.json;
    // A resumed run keeps its own schedule unless told otherwise: this call's defaults would
    // silently move the start of stage 2.
    if (o.train.resume && !steps_given)
        o.train.joint_steps = -1;
    if (o.train.resume && !refine_steps_given)
        o.train.refine_steps = -1;
    const auto report = engines::dpe::train_dpe(o.train);
    if (global.json) {
        print_json({{"output", o.output},
                    {"model", report.model.string()},
                    {"first_step", report.first_step},
                    {"last_step", report.last_step},
                    {"seconds", report.seconds},
                    {"last_loss", report.last_loss}});
    } else if (!global.quiet) {
        std::printf("%s: steps %lld to %lld in %.0f s (loss %.4f); model %s\n", o.output.c_str(),
                    static_cast<long long>(report.first_step),
                    static_cast<long long>(report.last_step), report.seconds, report.last_loss,
                    report.model.string().c_str());
    }
    return 0;
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global, CommandList& commands) {
    auto options = std::make_shared<TrainCliOptions>();
    auto* cmd = app.add_subcommand(
        "train",
        "Train an engine on the synthetic world, rendered on the fly (no data set to download).\n"
        "DPE: the paper's bidirectional cyclic training (reconstruction, perceptual and\n"
        "expression losses from the face-api nets, non-saturating GAN loss), joint stage then\n"
        "expression-generator refinement. Writes DIR/model.safetensors (usable with\n"
        "`avatar animate --weights`), DIR/checkpoint/, DIR/losses.csv, DIR/validation.csv\n"
        "and DIR/samples/.\n"
        "Example: avatar train -m dpe -o runs/dpe64 --steps 20000 --refine-steps 5000");
    auto& o = *options;
    cmd->add_option("-m,--model", o.model, "Engine to train (dpe)")->capture_default_str();
    cmd->add_option("-o,--output", o.output, "Run folder (created)")->required();
    cmd->add_flag("--resume", o.train.resume,
                  "Continue the run in the output folder from its last checkpoint (the\n"
                  "architecture, data and loss settings come from the checkpoint)");
    cmd->add_flag("--override-losses", o.train.override_losses,
                  "With --resume: use this call's --lr, --refine-lr, --lambda-* (all of them),\n"
                  "--logit-margin, --r1, --clip-grad, --warmup-steps, --flow-phase-steps,\n"
                  "--adam-beta1, --cross-fraction and --ema-half-life instead of the checkpoint's\n"
                  "(the optimizer state and the average so far are kept)");
    cmd->add_option("--init", o.train.init,
                    "Start a fresh run from these DPE weights (same architecture, or fewer motion\n"
                    "directions than --motion-dim), e.g. a shipped model.safetensors")
        ->check(CLI::ExistingFile);
    cmd->add_option("--size", o.size, "Image size of the model (power of two)")
        ->capture_default_str();
    cmd->add_option("--width", o.width, "Channels at full resolution (doubling per halving)")
        ->capture_default_str();
    cmd->add_option("--max-channels", o.max_channels, "Channel cap, also the latent size")
        ->capture_default_str();
    cmd->add_option("--motion-dim", o.motion_dim,
                    "Motion directions (the length of alpha; the official model has 20). With\n"
                    "--init of a file with fewer, the new directions start silent, so the run\n"
                    "starts from the file's outputs")
        ->capture_default_str();
    cmd->add_option("--batch", o.train.batch, "Pairs per step")->capture_default_str();
    auto* steps = cmd->add_option("--steps", o.train.joint_steps,
                                  "Steps of stage 1 (joint training; with --resume: the\n"
                                  "run's own unless given)")
                      ->capture_default_str();
    auto* refine_steps = cmd->add_option("--refine-steps", o.train.refine_steps,
                                         "Steps of stage 2 (expression generator refinement;\n"
                                         "with --resume: the run's own unless given)")
                             ->capture_default_str();
    cmd->add_option("--lr", o.train.joint_lr, "Adam learning rate of stage 1")
        ->capture_default_str();
    cmd->add_option("--refine-lr", o.train.refine_lr, "Adam learning rate of stage 2")
        ->capture_default_str();
    cmd->add_option("--lambda-perceptual", o.train.lambda_perceptual, "Perceptual loss weight")
        ->capture_default_str();
    cmd->add_option("--lambda-expression", o.train.lambda_expression, "Expression loss weight")
        ->capture_default_str();
    cmd->add_option("--lambda-adversarial", o.train.lambda_adversarial, "GAN loss weight")
        ->capture_default_str();
    cmd->add_option("--lambda-self", o.train.lambda_self_reconstruction,
                    "L1 weight of the self-reconstructions e(S,S), p(S,S) (ours; 0 = the paper)")
        ->capture_default_str();
    cmd->add_option("--lambda-logits", o.train.lambda_logits,
                    "Weight of a penalty on flow and mask logits beyond +-margin, against their\n"
                    "blow-up when runs collapse at high learning rates (ours; 0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--logit-margin", o.train.logit_margin,
                    "Logits within +-this are free of the --lambda-logits penalty")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--lambda-flow-points", o.train.lambda_flow_points,
                    "Weight of a loss holding the flows to the true motion of the synthetic\n"
                    "face's 468 points through the cycle (ours; 0: off; logged as flow_points)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--lambda-rendered", o.train.lambda_rendered,
                    "L1 weight of the cycle's first edits S', D' against their truth, rendered by\n"
                    "the synthetic world (ours; 0: off; logged as edit_l1)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--cross-fraction", o.train.cross_identity_fraction,
                    "Share of the pairs whose driving frame is another person's, held to the\n"
                    "truth the synthetic world renders for them (ours; 0: the paper's pairs)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cmd->add_option("--cross-rule", o.cross_rule,
                    "How those pairs are cut and what their truths carry: clip (every frame\n"
                    "with its clip's one crop, the other head's rotation and its move since its\n"
                    "clip's first frame) or portrait (each frame cut around its own face, the\n"
                    "other head's rotation only: synthbench's pairs; with --resume: the run's own)")
        ->check(CLI::IsMember({"clip", "portrait"}))
        ->capture_default_str();
    cmd->add_option("--lambda-motion-code", o.train.lambda_motion_code,
                    "Weight of a loss asking the best linear read-out of the motion code's change\n"
                    "to give the change of the face's points between two frames of a clip (ours;\n"
                    "0: off; the read-out's held-out error is logged as motion_code either way).\n"
                    "At 30 from the first step of a run from the shipped model, the generators\n"
                    "stopped moving the face within 500 steps (docs/training.md)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--lambda-expression-points", o.train.lambda_expression_points,
                    "Weight of a loss holding the expression edits' flows to the true motion of\n"
                    "the face's points, each point weighted by how far it moves, so that the\n"
                    "mouth and eyes count (ours; 0: off; logged as expression_points)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--r1", o.train.r1_gamma, "R1 penalty weight (0: none)")->capture_default_str();
    cmd->add_option("--clip-grad", o.train.clip_grad_norm,
                    "Clip the generator's total gradient norm to this before each step\n"
                    "(0: never; the norm is logged in losses.csv either way)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--adam-beta1", o.train.adam_beta1,
                    "Adam's beta1 for the generator (0: StyleGAN2's, no momentum; 0.9 fitted a\n"
                    "fixed batch far faster, docs/training.md)")
        ->check(CLI::Range(0.0, 0.999))
        ->capture_default_str();
    cmd->add_option("--ema-half-life", o.train.ema_half_life_images,
                    "Half-life, in training images, of the weights' moving average that samples\n"
                    "and model.safetensors hold (StyleGAN2's G_ema; ramped up over a run's first\n"
                    "images); longer averages out step-to-step noise at high learning rates")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--warmup-steps", o.train.warmup_steps,
                    "First fit only the self-reconstructions for this many steps of stage 1\n"
                    "(ours; a third of a full step's work), so the image path gives the source\n"
                    "back before the cycle asks it to move the face (0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--flow-phase-steps", o.train.flow_phase_steps,
                    "After the warm-up, fit only the motion for this many steps of stage 1\n"
                    "(ours): the first edits' flows held to the true motion of the face's points\n"
                    "(needs --lambda-flow-points), no second half of the cycle and no perceptual,\n"
                    "expression or GAN term; about half of a full step's work (0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_flag("--start-as-copy", o.train.start_as_copy,
                  "A fresh generator starts by giving its source back unchanged (ours), so it\n"
                  "has only to learn to move it; otherwise its image path starts random");
    cmd->add_option("--seed", o.seed,
                    "Seed of the synthetic identities and motion, and of a fresh run's initial\n"
                    "weights")
        ->capture_default_str();
    cmd->add_option("--photo-textures", o.photo_textures,
                    "Real skin for a share of the identities: images, folders, or faceapi-demo\n"
                    "(the face-api demo photos); their faces are unwrapped once at the start\n"
                    "(docs/synthetic-world.md)")
        ->expected(1, -1);
    cmd->add_option("--photo-fraction", o.photo_fraction,
                    "Share of the identities that wear a photo texture (with --photo-textures)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cmd->add_option("--backgrounds", o.backgrounds,
                    "Photographic backgrounds (images or folders) for every identity")
        ->expected(1, -1);
    cmd->add_option("--identities", o.identities, "Number of distinct synthetic identities")
        ->capture_default_str();
    cmd->add_option("--log-every", o.train.log_every, "Steps between rows of losses.csv")
        ->capture_default_str();
    cmd->add_option("--sample-every", o.train.sample_every, "Steps between sample grids")
        ->capture_default_str();
    cmd->add_option("--checkpoint-every", o.train.checkpoint_every, "Steps between checkpoints")
        ->capture_default_str();
    cmd->add_option("--validation-pairs", o.train.validation_pairs,
                    "Held-out pairs of the training world (half within a clip, half across\n"
                    "people) scored at the start and at every checkpoint into\n"
                    "DIR/validation.csv; even, 0: none (with --resume: the run's own)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--repeat-batches", o.train.repeat_batches,
                    "A check, not a way to train: cycle through only N fixed batches (0: the\n"
                    "endless stream); losses.csv's cycle_l1 falling below copy_l1 shows the\n"
                    "model can learn to move the source")
        ->capture_default_str();
    cmd->add_option("--max-steps", o.train.max_steps_this_run,
                    "Stop after this many steps of this call (0: run to the end); resume later")
        ->capture_default_str();
    commands.push_back({cmd, [options, &global, steps, refine_steps] {
                            return run_train(*options, global, steps->count() > 0,
                                             refine_steps->count() > 0);
                        }});
}

}  // namespace avatar::cli
