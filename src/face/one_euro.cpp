#include "face/one_euro.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace avatar::face {
namespace {

// The smoothing factor of a first-order low-pass filter with cutoff `cutoff` Hz sampled after
// `dt` seconds; a tensor when the cutoff is one.
double alpha(double cutoff, double dt) {
    return 1.0 / (1.0 + 1.0 / (2.0 * M_PI * cutoff * dt));
}
torch::Tensor alpha(const torch::Tensor& cutoff, double dt) {
    return 1.0 / (1.0 + 1.0 / (2.0 * M_PI * dt * cutoff));
}

}  // namespace

OneEuroFilter::OneEuroFilter(OneEuroParams params) : params_(params) {
    avatar::check(std::isfinite(params.min_cutoff) && params.min_cutoff > 0, "One-Euro min_cutoff",
                  "must be > 0 Hz, got " + std::to_string(params.min_cutoff));
    avatar::check(std::isfinite(params.beta) && params.beta >= 0, "One-Euro beta",
                  "must be >= 0, got " + std::to_string(params.beta));
    avatar::check(std::isfinite(params.d_cutoff) && params.d_cutoff > 0, "One-Euro d_cutoff",
                  "must be > 0 Hz, got " + std::to_string(params.d_cutoff));
}

void OneEuroFilter::reset() {
    x_hat_ = torch::Tensor();
    dx_hat_ = torch::Tensor();
    last_time_ = 0.0;
}

torch::Tensor OneEuroFilter::operator()(const torch::Tensor& sample, double time_s) {
    avatar::check(sample.defined(), "One-Euro filter", "undefined sample");
    avatar::check(std::isfinite(time_s), "One-Euro filter", "time stamp is not finite");
    const auto x = sample.detach().to(torch::kFloat64);
    if (!x_hat_.defined()) {
        x_hat_ = x.clone();
        dx_hat_ = torch::zeros_like(x);
        last_time_ = time_s;
        return sample.clone();
    }
    avatar::check(x.sizes() == x_hat_.sizes(), "One-Euro filter",
                  "sample shape changed; reset() the filter between different signals");
    const double dt = time_s - last_time_;
    avatar::check(dt >= 0, "One-Euro filter",
                  "time stamp " + std::to_string(time_s) + " s is before the previous one (" +
                      std::to_string(last_time_) + " s)");
    if (dt == 0)
        return x_hat_.to(sample.options());
    const auto x_prev = x_hat_.to(x.device());
    const auto dx = (x - x_prev) / dt;
    const double a_d = alpha(params_.d_cutoff, dt);
    dx_hat_ = dx_hat_.to(x.device()) + a_d * (dx - dx_hat_.to(x.device()));
    const auto cutoff = params_.min_cutoff + params_.beta * dx_hat_.abs();
    x_hat_ = x_prev + alpha(cutoff, dt) * (x - x_prev);
    last_time_ = time_s;
    return x_hat_.to(sample.options());
}

std::vector<double> OneEuroFilter::operator()(const std::vector<double>& sample, double time_s) {
    const auto in = torch::from_blob(const_cast<double*>(sample.data()), {int64_t(sample.size())},
                                     torch::kFloat64);
    const auto out = (*this)(in, time_s).contiguous();
    return std::vector<double>(out.data_ptr<double>(), out.data_ptr<double>() + out.numel());
}

}  // namespace avatar::face
