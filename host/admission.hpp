// Per-principal concurrency: how many requests one token may have in flight at once (config
// max_requests_per_principal). A request over the limit is answered 429 with retry-after before
// its body is read, so one client cannot take every worker, every spool byte and every
// connection slot from the others.
//
// A request counts from its accepted head until its response is done and its handler returned
// (the ticket lives in the request's exchange). Principals are keyed by token name: two tokens of
// one user are two principals, as they are two API keys for the client.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace aqd {

class admission {
public:
    // Releases its place on destruction. Empty (default-constructed) tickets hold nothing.
    class ticket {
    public:
        ticket() = default;
        ticket(ticket&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), slot_(o.slot_) {}
        ticket& operator=(ticket&& o) noexcept {
            if (this != &o) {
                release();
                owner_ = std::exchange(o.owner_, nullptr);
                slot_ = o.slot_;
            }
            return *this;
        }
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ~ticket() { release(); }

        explicit operator bool() const noexcept { return owner_ != nullptr; }

    private:
        friend class admission;
        using slot = std::pair<const std::string, std::uint32_t>;
        ticket(admission* owner, slot* s) : owner_(owner), slot_(s) {}
        void release() noexcept;

        admission* owner_ = nullptr;
        slot* slot_ = nullptr;
    };

    explicit admission(std::uint32_t limit_per_principal) : limit_(limit_per_principal) {}

    // Thread: any. An empty ticket when `principal` already has `limit` requests in flight.
    ticket try_enter(std::string_view principal);

    std::uint32_t limit() const noexcept { return limit_; }
    // Requests in flight for a principal (tests, logs).
    std::uint32_t in_flight(std::string_view principal) const;

private:
    const std::uint32_t limit_;
    mutable std::mutex mutex_;
    // Only principals with requests in flight have an entry: the map is as large as the set of
    // busy tokens, never as the set of tokens ever seen. Node addresses are stable (tickets point
    // into it).
    std::unordered_map<std::string, std::uint32_t> busy_;
};

}  // namespace aqd
