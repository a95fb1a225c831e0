#pragma once
// Training DPE as in the paper (papers/dpe.txt section 3.2-3.3 and "Implementation details"), on
// the synthetic world (train/synthetic_clips.h), with the front end's face nets for the feature
// losses (train/face_feature_losses.h).
//
// One step takes a batch of two frames S and D of the same clip (or, with
// cross_identity_fraction, some of other people's clips) and runs the bidirectional cycle. With
// e(X, Y) the expression transfer from Y to X and p(X, Y) the pose transfer — in the official
// module names, e renders with mlp_pose and dec_pose and p with mlp_exp and dec_exp
// (Stage::kExpression and Stage::kPose of generator.h) —
//   S'  = e(S, D)    S'' = p(S', D)      (S'' must be D)
//   D'  = p(D, S)    D'' = e(D', S)      (D'' must be S; S' and D' both have S's pose and D's
//                                         expression, so S' must equal D')
// and the losses are
//   rec = |S'' - D|_1 + |D'' - S|_1 + |S' - D'|_1   (across identities: S'', D'' against their
//                                                 rendered truth; no S' - D' term)
//   per = P(S'', D) + P(D'', S) + P(S', D') + P(e(S, S), S) + P(p(S, S), S)
//   exp = E(S', D) + E(D', D)
//   adv = nonsaturating(S'') + nonsaturating(D'')
//   L   = rec + lambda_p per + lambda_e exp + lambda_adv adv
//         + lambda_self (|e(S, S) - S|_1 + |p(S, S) - S|_1)   (ours, see the option)
//         + lambda_logits * (flow and mask logits beyond a margin)  (ours, off by default)
//         + lambda_flow_points * (flows against the true motion of the face's points)  (ours, off)
//         + lambda_rendered (|S' - T|_1 + |D' - T|_1)  (ours, off; T = the rendered truth of S'
//                                                     and D', train/synthetic_clips.h)
//         + lambda_motion_code |R (alpha_D - alpha_S) - (p_D - p_S)|_1  (ours, off; R the ridge
//                                   fit of the recent pairs' codes to their 468 points p)
//         + lambda_expression_points * (the expression edits' flows against the true motion,
//                                   each point weighted by how far it moves)  (ours, off)
// with a residual discriminator telling S'' and D'' from real frames (+ lazy R1).
// An optional warm-up (ours) fits only the self-reconstructions first, and an optional flow phase
// (ours) then fits only the first edits' flows to the true motion. Two stages: joint
// training of everything, then a refinement of the expression generator in
// which only the motion MLPs, the direction basis and the expression generator learn.
// The generator's exponential moving average is what samples and the exported model use.
//
// Output folder:
//   model.safetensors   the EMA generator, official tensor names (loads with load_dpe_generator)
//   checkpoint/         everything to resume (train/checkpoint.h)
//   validation.csv      the held-out pairs' scores at the start and at every checkpoint
//                       (held_out_pairs.h; validation_pairs below)
//   losses.csv          one row per logged step; besides the losses, cycle_l1 = |S'' - D|_1 and
//                       copy_l1 = |S - D|_1 (what leaving the source unchanged would score):
//                       cycle_l1 below copy_l1 means the generator has learnt to move the face;
//                       flow_points = the flow-point loss (how far the flows are from the true
//                       motion, in grid units where the crop is 2 wide); edit_l1 = the mean of
//                       |S' - T|_1 and |D' - T|_1 (how far the cycle's first edits are from
//                       their rendered truth; NaN in the warm-up); motion_code = the
//                       motion-code read-out's error (grid units; NaN in the warm-up);
//                       flow_points_by_block = each decoder block's share of flow_points, coarse
//                       (8x8) to fine, ';'-separated (flow_points is their mean)
//   samples/step_N.png  rows: source, driving, expression transfer, pose transfer, both
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "engines/dpe/generator.h"
#include "train/synthetic_clips.h"

namespace avatar::engines::dpe {

// A narrow DPE for training on a CPU: `size` px, channels `width` at full size doubling as the
// resolution halves up to `max_channels`, style_dim = max_channels, `motion_dim` motion
// directions (the official 20 by default; the synthetic world moves a head in more ways than
// that: 3 rotations, its place and size in the crop, 22 expression and 4 gaze coefficients).
DPEConfig compact_config(int64_t size, int64_t width, int64_t max_channels,
                         int64_t motion_dim = 20);

struct DpeTrainOptions {
    DPEConfig model = compact_config(64, 32, 128);
    train::SyntheticClipOptions data;  // data.image_size is set to model.size
    int64_t batch = 8;
    // With resume, a negative count keeps the checkpoint's (`avatar train --resume` without
    // --steps / --refine-steps); a given one extends or shortens the run.
    int64_t joint_steps = 20000;  // stage 1 (the paper: 100k at batch 32)
    int64_t refine_steps = 5000;  // stage 2 (the paper: 50k)
    // Adam, betas (0, 0.99). The paper's 0.002 / 0.0008 are for batch 32; at our batch of 4,
    // 0.002 let runs collapse after ~1500 steps and 0.0005 did not (docs/training.md), so a
    // quarter of the paper's rates.
    double joint_lr = 0.0005;
    double refine_lr = 0.0002;
    double lambda_perceptual = 1.0;
    double lambda_expression = 1.0;
    double lambda_adversarial = 0.1;
    // L1 of the self-reconstructions e(S,S)-S and p(S,S)-S (the paper puts only its perceptual
    // loss there). Our perceptual features come from a landmark net that barely sees colour, and
    // without a pixel term the intermediate S' drifts to a green cast that only the second
    // generator undoes (seen in a run's first 1000 steps). 0 = the paper's losses exactly.
    double lambda_self_reconstruction = 1.0;
    // Weight of a penalty on the decoders' flow and mask logits beyond +-`logit_margin` (the
    // mean of relu(|logit| - margin)^2 over every level of every render). Runs at lr 0.002
    // collapsed when those logits saturated tanh and sigmoid and cut the warp path for good
    // (docs/training.md); the penalty keeps them where gradients still flow. 0 = off.
    double lambda_logits = 0.0;
    double logit_margin = 3.0;
    // Weight of the flow-point loss (ours; flow_point_loss in trainer.cpp): the synthetic world
    // knows where each of the face's 468 points is in S and D, so the flows of the cycle can be
    // held to the true motion directly instead of only through the pixels (which never taught
    // our runs to move the head, docs/training.md). losses.csv logs it (flow_points) whatever
    // the weight. 0 = off, the paper's losses.
    double lambda_flow_points = 0.0;
    // Weight of the rendered-truth loss (ours): the synthetic world renders what the cycle's
    // first edits S' = e(S, D) and D' = p(D, S) must be (the person with S's pose and D's
    // expression), which the paper's real videos cannot; the L1 to it is added to rec. Without
    // it only S' = D' is asked, and how the motion is split between the two edits is free.
    // losses.csv logs edit_l1 whatever the weight. 0 = off, the paper's losses.
    double lambda_rendered = 0.0;
    // The share of each batch's pairs whose driving frame is another person's (ours): the
    // paper trains within clips because real videos have no truth across identities; the
    // synthetic world renders it (train/synthetic_clips.h), so those pairs are held to their
    // rendered S'' and D'' (and S', D' with --lambda-rendered), and S' = D' is asked only within
    // a clip. 0 = the paper's pairs.
    double cross_identity_fraction = 0.0;
    // Weight of the motion-code loss (ours): the best linear read-out of the change of the face's
    // 468 points between two frames of one clip from the change of their motion codes alpha (the
    // magnitudes along the direction basis), refitted at every step by ridge regression, must be
    // right. The relative motion of inference adds such changes to the source's code, and DPE
    // moves the face along linear directions, so the code should carry the motion linearly; a
    // probe of a step-6600 model found only a third of the points' change there
    // (docs/training.md). The read-out is fitted at every weight (at 0 a pure probe) and
    // losses.csv logs its held-out error as motion_code. 0 = off, the paper's losses.
    double lambda_motion_code = 0.0;
    // Weight of the expression-point loss (ours; expression_point_loss in flow_terms.h): the
    // flow-point error of the expression edits (S' = e(S, D), and D'' = e(D', S) once the cycle
    // runs), each point weighted by how far the edit truly moves it. Synthetic expressions move
    // the points 0.007 grid units on average (under half a pixel at 128x128) against 0.07 for
    // the pose edit, so in the flow-point loss's plain mean an expression edit that moves
    // nothing scores as well as one that moves the mouth, and every model up to session 14 had
    // learnt exactly that: on held-out pairs its expression flows scored what no motion scores
    // (validation.csv, docs/training.md). losses.csv logs expression_points whatever the weight.
    // 0 = off, the paper's losses.
    double lambda_expression_points = 0.0;
    double r1_gamma = 1.0;  // 0: no R1
    // The generator's total gradient norm is clipped to this before each Adam step (0: never).
    // The norm itself is logged (losses.csv g_grad_norm) either way.
    double clip_grad_norm = 0;
    int64_t r1_every = 16;  // lazy regularisation interval (StyleGAN2)
    // Adam's beta1 for the generator (betas (beta1, 0.99)). 0 is StyleGAN2's choice, which our
    // runs kept; the paper says only "Adam". With 0.9 a fixed batch was fitted below the
    // unchanged source within 40 steps, which beta1 0 never did (docs/training.md).
    double adam_beta1 = 0.0;
    // The first this many steps of stage 1 fit only the self-reconstructions e(S,S) and p(S,S)
    // (L1 + perceptual; no cycle, no GAN, about a third of a full step's work): a fresh
    // generator gives back a blur of the source, worse than leaving it unchanged, and the cycle
    // cannot reward moving the face before the image path works (docs/training.md). 0 = off.
    int64_t warmup_steps = 0;
    // After the warm-up, this many steps of stage 1 fit only the motion (ours): the first edits
    // S' = e(S, D) and D' = p(D, S) are rendered, their flows and the self-reconstructions' are
    // held to the true motion of the face's 468 points (--lambda-flow-points, which must be > 0),
    // and only cheap L1 terms keep the image (the self-reconstructions, and the rendered truth of
    // S' and D' with --lambda-rendered). No second half of the cycle, no perceptual, expression
    // or GAN term: about half of a full step's work, all of it on the flows, which on the full
    // stream stayed close to zero flows (docs/training.md). 0 = off.
    int64_t flow_phase_steps = 0;
    // A fresh generator starts as the copy of its source (start_as_copy below) instead of a
    // random image path. Ignored when resuming or with --init.
    bool start_as_copy = false;
    // A check, not a way to train: cycle through only this many fixed batches (0 = the endless
    // stream). A model that cannot fit four pairs will not learn from millions; losses.csv's
    // cycle_l1 against copy_l1 says whether it has learnt to move the source (docs/training.md).
    int64_t repeat_batches = 0;
    // Half-life of the generator's moving average in training images (train/ema.h; ramped up
    // over the run's first images). Longer smooths the step-to-step noise of high learning rates.
    double ema_half_life_images = 2000.0;
    // Held-out pairs of the training world scored at the start and at every checkpoint, with the
    // exported generator, into validation.csv (held_out_pairs.h): half within a clip, half across
    // people. Even; 0 = none.
    int64_t validation_pairs = 64;
    int64_t log_every = 10;
    int64_t sample_every = 500;
    int64_t checkpoint_every = 200;
    std::filesystem::path output;
    bool resume = false;
    // With resume: keep this call's learning rates, loss weights, R1 settings and EMA half-life
    // instead of the checkpoint's (e.g. to bring the GAN loss in late); the architecture and data
    // always come from the checkpoint.
    bool override_losses = false;
    // A fresh run may start from a DPE generator file of the same architecture (e.g. a shipped
    // model.safetensors when its run folder is gone); optimizer and discriminator start anew.
    // A file with fewer motion directions than the run is widened (load_widening_motion).
    std::filesystem::path init;
    bool show_progress = true;
    // Stops after this many steps of this call (0 = run to the end); for tests and time boxes.
    int64_t max_steps_this_run = 0;
};

// Makes a fresh generator render its source unchanged whatever the motion (up to the official
// identity grid's half-pixel resampling), so training starts from the "unchanged source" baseline
// and has only to learn to move it: the encoder stem passes the image through its first three
// channels (shifted positive, past the leaky ReLU), the finest ToRGB of both decoders maps them
// back, and the coarser ToRGBs start at zero; the flows start at zero as in every fresh run (the
// to_flows weights zeroed, so every mask is 1/2). The other weights keep their random values.
void start_as_copy(Generator& g);

struct DpeTrainReport {
    int64_t first_step = 0;  // 0 for a fresh run
    int64_t last_step = 0;   // steps done in all, over every call
    double seconds = 0;      // of this call
    std::filesystem::path model;
    double last_loss = 0;  // the generator's total loss at the last step
};

// Throws avatar::Error naming the bad option or file. A fresh run refuses an output folder
// that already holds a checkpoint (pass resume), and resume refuses one that does not.
DpeTrainReport train_dpe(DpeTrainOptions options);

}  // namespace avatar::engines::dpe
