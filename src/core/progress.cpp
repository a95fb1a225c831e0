#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>

namespace avatar {
namespace {
std::atomic<bool> g_enabled{true};

std::string format_seconds(double s) {
    char buf[32];
    const int total = static_cast<int>(s + 0.5);
    if (total >= 3600) {
        std::snprintf(buf, sizeof buf, "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%d:%02d", total / 60, total % 60);
    }
    return buf;
}
}  // namespace

void Progress::set_enabled(bool enabled) {
    g_enabled = enabled;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
    finish();
}

void Progress::advance(int64_t n) {
    done_ += n;
    if (!g_enabled)
        return;
    const auto now = std::chrono::steady_clock::now();
    const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
    if (tty_) {
        if (since_draw >= 0.1)
            draw(false);
        return;
    }
    const int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : -1;
    if (decile > last_decile_ || since_draw >= 5.0) {
        last_decile_ = std::max(decile, last_decile_);
        draw(false);
    }
}

void Progress::finish() {
    if (finished_)
        return;
    finished_ = true;
    // A plain-line log already shows the last state if nothing happened since it was printed.
    if (g_enabled && (tty_ || done_ != last_drawn_done_))
        draw(true);
}

void Progress::draw(bool final_line) {
    last_draw_ = std::chrono::steady_clock::now();
    last_drawn_done_ = done_;
    const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
    const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
    std::string line = label_ + " ";
    char buf[160];
    if (total_ > 0) {
        const double fraction = std::min(1.0, static_cast<double>(done_) / total_);
        if (tty_) {
            constexpr int kWidth = 30;
            const int filled = static_cast<int>(fraction * kWidth);
            line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
        }
        const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
        const bool show_eta = !final_line && done_ < total_;
        std::snprintf(buf, sizeof buf, "%3.0f%% %lld/%lld %s, %.1f %s/s, %s elapsed%s%s",
                      100 * fraction, static_cast<long long>(done_), static_cast<long long>(total_),
                      unit_.c_str(), rate, unit_.c_str(), format_seconds(elapsed).c_str(),
                      show_eta ? ", ETA " : "", show_eta ? format_seconds(eta).c_str() : "");
    } else {
        std::snprintf(buf, sizeof buf, "%lld %s, %.1f %s/s, %s elapsed",
                      static_cast<long long>(done_), unit_.c_str(), rate, unit_.c_str(),
                      format_seconds(elapsed).c_str());
    }
    line += buf;
    if (tty_) {
        std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
}

}  // namespace avatar
