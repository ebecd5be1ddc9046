// A pool of SOCI sessions opened from one database URL, that survives the database going away.
//
// URLs:
//   sqlite:/abs/path/db.sqlite         SQLite file (created if missing), WAL journal, busy
//                                      timeout 10 s, foreign keys on, synchronous=NORMAL
//   postgresql://user:pass@host:port/db (also postgres://) PostgreSQL; user, password, port
//                                      optional, percent-encoded parts are decoded; a query
//                                      string (?sslmode=require&...) is passed on as key=value
//                                      after our defaults (connect_timeout=5, TCP keepalives),
//                                      so the URL's own values win
//
// Sessions are opened at construction, so a bad URL or an unreachable server fails init rather
// than the first request. After that the pool never blocks without bound and never hands out a
// dead session:
//   - lease() waits at most `wait` for a free session, then throws sql::unavailable (busy);
//   - a PostgreSQL session is checked when it is leased (a non-blocking poll of its socket: a
//     server that closed it, by a restart, a crash or an administrator, leaves it readable) and
//     when it comes back (connection bad, or a transaction left open); a broken one is closed;
//   - a closed session is reopened when next needed, with exponential backoff between failed
//     attempts (reconnect_initial doubling to reconnect_max). While the server is down a lease
//     fails at once with sql::unavailable (unreachable) and its retry-after is the backoff left;
//   - a statement that fails because its connection broke is turned into sql::unavailable by
//     session_lease::run (also SQLite's "database is locked" past the busy timeout).
// Bulk work (the chunks of a file written into the database, one short transaction each) takes
// streaming leases: at most `streaming` of them at once, so `size - streaming` sessions always
// remain for short requests. lease_streaming() waits like lease(); try_lease_streaming() never
// waits.
//
// healthy() is the last thing the pool learned (a connect, a session found broken or alive when
// returned): cheap. probe() asks the server. ready_now() is for readiness checks: it asks the
// server on a free session and never waits for one.
#pragma once

#include "sql/unavailable.hpp"

#include <soci/session.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aq::sql {

enum class backend { sqlite, postgresql };

// What a URL names: the backend and SOCI's connect string for it.
struct target {
    backend kind;
    std::string connect_string;
    std::string file;  // SQLite: the database file; empty for PostgreSQL
};

// Parses a database URL. Throws std::invalid_argument naming what is wrong (never echoing a
// password).
target parse_url(std::string_view url);

struct pool_options {
    std::size_t size = 8;       // sessions (at least 1)
    std::size_t streaming = 0;  // streaming leases at once; below size (0: none)
    std::chrono::milliseconds wait{5000};
    std::chrono::milliseconds reconnect_initial{200};
    std::chrono::milliseconds reconnect_max{5000};
    // Told when the database becomes unreachable (with the cause) and reachable again.
    std::function<void(bool reachable, const std::string& detail)> on_change;
    // Told when a lease had to wait for a free session: how long, and whether it got one (false:
    // it gave up after `wait`). For the plugins' pool metrics; never called under the pool's lock.
    std::function<void(std::chrono::steady_clock::duration waited, bool leased)> on_wait;
};

class pool;

// A session borrowed from the pool; returned when destroyed (or reset). Movable, not copyable.
class session_lease {
public:
    session_lease() = default;
    session_lease(session_lease&& other) noexcept;
    session_lease& operator=(session_lease&& other) noexcept;
    ~session_lease();

    soci::session& operator*() const noexcept { return *session_; }
    soci::session* operator->() const noexcept { return session_; }
    explicit operator bool() const noexcept { return session_ != nullptr; }
    void reset() noexcept;

    // Runs fn(session); a failure caused by the connection (or SQLite's lock timeout) comes out
    // as sql::unavailable, any other exception unchanged.
    template <class Fn>
    decltype(auto) run(Fn&& fn) {
        try {
            return fn(*session_);
        } catch (...) {
            rethrow_classified();
        }
    }
    // From a catch block: rethrows the exception in flight as sql::unavailable when the session's
    // connection is what failed, else as it is.
    [[noreturn]] void rethrow_classified() const;

    // An object kept with this session for as long as it stays open, under `tag` (one per call
    // site): a prepared statement reused by every lease of the session, which spares a hot
    // query SQLite's parse or PostgreSQL's prepare round trip each time. make(session) returns a
    // std::unique_ptr<T> on first use. Kept objects are destroyed before their session closes;
    // forget(tag) drops one (after a failure left it in doubt).
    template <class T, class Make>
    T& kept(const void* tag, Make&& make) {
        std::shared_ptr<void>& held = kept_slot(tag);
        if (!held) held = std::shared_ptr<T>(make(*session_));
        return *static_cast<T*>(held.get());
    }
    void forget(const void* tag) noexcept;

private:
    std::shared_ptr<void>& kept_slot(const void* tag);

    friend class pool;
    session_lease(pool* p, std::size_t slot, soci::session* s) noexcept : pool_(p), slot_(slot), session_(s) {}

    pool* pool_ = nullptr;
    std::size_t slot_ = 0;
    soci::session* session_ = nullptr;
};

class pool {
public:
    // Opens every session. Throws std::invalid_argument for a bad URL, soci::soci_error when the
    // database cannot be opened.
    pool(std::string_view url, pool_options options);
    // `size` sessions whose lease waits without bound, as pools did before pool_options: for
    // callers that have not chosen a wait yet (pass pool_options for a bounded one).
    pool(std::string_view url, std::size_t size) : pool(url, sized(size)) {}
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    backend kind() const noexcept { return kind_; }
    // The SQLite database file; empty for PostgreSQL.
    const std::string& file() const noexcept { return file_; }
    std::size_t size() const noexcept { return slots_.size(); }

    // A session for a short piece of work. Throws sql::unavailable.
    session_lease lease();
    // A session for bulk work, counted against the streaming budget; waits like lease().
    // Throws sql::unavailable.
    session_lease lease_streaming();
    // The same, if one may be taken right now; empty otherwise. Throws sql::unavailable when one
    // was free but the database cannot be reached.
    session_lease try_lease_streaming();
    // Leases a session and runs fn(session) through session_lease::run.
    template <class Fn>
    decltype(auto) run(Fn&& fn) {
        session_lease l = lease();
        return l.run(std::forward<Fn>(fn));
    }

    bool healthy() const noexcept { return healthy_.load(); }
    // A round trip ("select 1") on a pooled session; false when it fails or none is free.
    bool probe() noexcept;
    // For readiness: a round trip on a session that is free right now; with none free (every
    // session busy with work) the last thing learned, healthy(). False while reconnecting.
    bool ready_now() noexcept;

private:
    friend class session_lease;
    static pool_options sized(std::size_t size) {
        pool_options o;
        o.size = size;
        o.wait = std::chrono::hours(24 * 365);
        return o;
    }
    struct slot {
        std::unique_ptr<soci::session> session;  // null: closed
        bool leased = false;
        bool streaming = false;
        // session_lease::kept objects of this session; declared after it, so destroyed before it.
        std::map<const void*, std::shared_ptr<void>> kept;
    };

    std::optional<std::size_t> take_free(bool streaming);  // under mu_
    session_lease wait_for(bool streaming);
    session_lease ready(std::size_t index);                // opens or checks the slot's session
    std::unique_ptr<soci::session> connect();
    void release(std::size_t index) noexcept;
    void learn(bool reachable, const std::string& detail) noexcept;

    backend kind_;
    std::string file_;
    std::string connect_string_;
    pool_options options_;

    std::mutex mu_;
    std::condition_variable freed_;
    std::vector<slot> slots_;
    std::size_t streaming_in_use_ = 0;
    std::size_t connecting_ = 0;
    std::chrono::steady_clock::time_point next_connect_{};
    std::chrono::milliseconds backoff_{0};
    std::atomic<bool> healthy_{true};
};

}  // namespace aq::sql
