// The minimum transfer rate of a request or response body (config min_body_rate_bytes_per_s,
// body_rate_window_ms), in the spirit of Apache's mod_reqtimeout MinRate.
//
// Time is counted only while the host waits on the peer: while it wants body bytes and none
// come, or while a write is not yet accepted by the socket. A handler or a store that is slow to
// produce a response is not the client's fault and does not count. That time is cut into
// windows; when a window is full, the bytes moved in it must reach rate x window, or the peer is
// too slow. The first window is the grace period: a client gets a whole window to get going.
//
// Pure arithmetic, no clock of its own: the connection feeds it durations.
#pragma once

#include <chrono>
#include <cstdint>

namespace aqd {

class transfer_rate {
public:
    using duration = std::chrono::steady_clock::duration;

    // min_bytes_per_s 0: never too slow.
    transfer_rate(std::uint64_t min_bytes_per_s, std::chrono::milliseconds window)
        : min_(min_bytes_per_s), window_(window) {}

    bool enabled() const noexcept { return min_ > 0 && window_.count() > 0; }

    // Bytes that moved; they count in the current window.
    void moved(std::uint64_t bytes) noexcept { bytes_ += bytes; }

    // Time spent waiting on the peer. False when a window closed below the minimum (the
    // connection should be cut); windows that close above it start the next one.
    bool waited(duration d) noexcept {
        if (!enabled()) return true;
        waited_ += d;
        while (waited_ >= window_) {
            if (bytes_ < required()) {
                last_window_bytes_ = bytes_;
                return false;
            }
            waited_ -= window_;
            bytes_ = 0;
        }
        return true;
    }

    // Waiting time left until the current window closes.
    duration wait_left() const noexcept { return window_ - waited_; }

    std::uint64_t required() const noexcept {
        return min_ * static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(window_).count()) /
               1000;
    }
    // Bytes of the window that failed (for the log line).
    std::uint64_t failed_window_bytes() const noexcept { return last_window_bytes_; }
    std::chrono::milliseconds window() const noexcept { return std::chrono::duration_cast<std::chrono::milliseconds>(window_); }
    std::uint64_t min_bytes_per_s() const noexcept { return min_; }

private:
    std::uint64_t min_;
    duration window_;
    duration waited_{};
    std::uint64_t bytes_ = 0;
    std::uint64_t last_window_bytes_ = 0;
};

}  // namespace aqd
