#pragma once
// Progress reporting for long work. On a terminal: one bar redrawn in place on stderr (at most
// ten times a second). Otherwise (CI logs, pipes): a plain line at every 10 % or every 5 seconds.
#include <chrono>
#include <cstdint>
#include <string>

namespace avatar {

class Progress {
public:
    // `total` <= 0 when the amount of work is unknown (then counts and rate are shown).
    Progress(std::string label, int64_t total, std::string unit = "items");
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void advance(int64_t n = 1);
    // Prints the final state; called by the destructor if not called before.
    void finish();

    // Globally silences every progress display (e.g. for tests or --quiet).
    static void set_enabled(bool enabled);

private:
    void draw(bool final_line);

    std::string label_;
    std::string unit_;
    int64_t total_;
    int64_t done_ = 0;
    int64_t last_drawn_done_ = -1;
    bool finished_ = false;
    bool tty_;
    int last_decile_ = -1;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace avatar
