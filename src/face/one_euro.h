#pragma once
// The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): an adaptive low-pass filter for
// noisy real-time signals such as landmarks and head pose. Each element is an exponential
// smoother whose cutoff rises with the element's (smoothed) speed:
//   alpha(fc, dt)  = 1 / (1 + 1 / (2 pi fc dt))
//   dx_hat        = lerp(dx_hat_prev, (x - x_hat_prev) / dt, alpha(d_cutoff, dt))
//   cutoff         = min_cutoff + beta * |dx_hat|
//   x_hat          = lerp(x_hat_prev, x, alpha(cutoff, dt))
// Low min_cutoff: less jitter when still; high beta: less lag when moving. The first sample (after
// construction or reset) passes unchanged. Cutoffs are in Hz, time stamps in seconds.
#include <torch/torch.h>

#include <vector>

namespace avatar::face {

struct OneEuroParams {
    double min_cutoff = 1.0;  // Hz, > 0
    double beta = 0.0;        // >= 0, per (signal unit / second)
    double d_cutoff = 1.0;    // Hz, > 0, for the speed estimate
};

class OneEuroFilter {
public:
    // Throws avatar::Error for out-of-range parameters.
    explicit OneEuroFilter(OneEuroParams params = {});

    // Filters one sample of any shape (every element independently); returns the filtered
    // sample in the input's dtype and device (state is kept in float64). `time_s` must increase
    // from call to call; a repeated time stamp returns the previous output unchanged (a
    // duplicated frame), a decreasing one or a change of shape throws avatar::Error.
    torch::Tensor operator()(const torch::Tensor& sample, double time_s);
    std::vector<double> operator()(const std::vector<double>& sample, double time_s);

    // Forgets the state: the next sample passes unchanged.
    void reset();
    bool initialized() const { return x_hat_.defined(); }
    const OneEuroParams& params() const { return params_; }

private:
    OneEuroParams params_;
    torch::Tensor x_hat_;   // float64, the last output
    torch::Tensor dx_hat_;  // float64, the smoothed speed
    double last_time_ = 0.0;
};

}  // namespace avatar::face
