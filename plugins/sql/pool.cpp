#include "sql/pool.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <soci/soci.h>

#include <aqueduct/plugin.hpp>

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

namespace aq::sql {
namespace {

// URL parts: '+' is a plus here, not a space.
std::string percent_decode(std::string_view in) { return aq::percent_decode(in, false); }

// libpq keyword=value syntax: single-quoted, with ' and \ escaped by a backslash.
std::string libpq_value(std::string_view v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

target parse_postgresql(std::string_view rest) {
    // rest = [user[:password]@]host[:port][/dbname][?key=value&...]
    std::string out;
    auto add = [&](std::string_view key, std::string_view value) {
        if (value.empty()) return;
        if (!out.empty()) out.push_back(' ');
        out.append(key).push_back('=');
        out += libpq_value(value);
    };
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view dbname;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        dbname = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = userinfo.find(':');
        add("user", percent_decode(userinfo.substr(0, colon)));
        if (colon != std::string_view::npos) add("password", percent_decode(userinfo.substr(colon + 1)));
    }
    std::string_view host = rest, port;
    if (!rest.empty() && rest.front() == '[') {  // [ipv6]:port
        auto close = rest.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("database URL: unterminated [ in host");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty()) throw std::invalid_argument("database URL: PostgreSQL URL has no host");
    for (char c : port)
        if (c < '0' || c > '9') throw std::invalid_argument("database URL: port is not a number");
    add("host", percent_decode(host));
    add("port", port);
    add("dbname", percent_decode(dbname));
    // Server NOTICEs ("relation already exists, skipping" from idempotent DDL) would otherwise be
    // printed by libpq to stderr, outside the log. A URL's own ?options= comes later and wins.
    add("options", "-c client_min_messages=warning");
    // A server that does not answer must not hold a request forever: connecting gives up after
    // 5 s, and TCP keepalives notice a peer that vanished mid-statement within about a minute.
    add("connect_timeout", "5");
    add("keepalives", "1");
    add("keepalives_idle", "30");
    add("keepalives_interval", "10");
    add("keepalives_count", "3");
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw std::invalid_argument("database URL: query parameters must be key=value");
        std::string key = percent_decode(pair.substr(0, eq));
        for (char c : key)
            if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                throw std::invalid_argument("database URL: invalid parameter name");
        add(key, percent_decode(pair.substr(eq + 1)));
    }
    return {backend::postgresql, out, {}};
}

// SOCI's sqlite3 backend reads "db=... timeout=..." and accepts a quoted value.
std::string sqlite_connect_string(std::string_view path) {
    if (path.find('"') != std::string_view::npos)
        throw std::invalid_argument("database URL: SQLite path must not contain '\"'");
    return "db=\"" + std::string(path) + "\" timeout=10";
}

// SQLite keeps allocation statistics (SQLITE_CONFIG_MEMSTATUS, on by default) under one
// process-wide mutex taken on every allocation: with many workers answering small reads, that
// mutex is contended (perf of files_bench's metadata GETs). Nothing here reads the statistics.
// The setting is only accepted before the library initializes, so it is made once, before the
// first connection; a refusal (the library already initialized elsewhere) changes nothing.
void disable_sqlite_memstatus() {
    static const int rc = sqlite_api::sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)rc;
}

PGconn* pg_connection(soci::session& s) noexcept {
    // By name, not dynamic_cast: libsoci_postgresql does not export the backend's typeinfo.
    if (s.get_backend_name() != "postgresql" || !s.get_backend()) return nullptr;
    return static_cast<soci::postgresql_session_backend*>(s.get_backend())->conn_;
}

sqlite_api::sqlite3* sqlite_connection(soci::session& s) noexcept {
    if (s.get_backend_name() != "sqlite3" || !s.get_backend()) return nullptr;
    return static_cast<soci::sqlite3_session_backend*>(s.get_backend())->conn_;
}

// An idle session that may be handed out. A PostgreSQL server that closed the connection (shut
// down, crashed, restarted, terminated the backend) leaves its socket readable: one poll with no
// wait finds it, without a round trip. Anything unasked-for on an idle connection disqualifies it.
bool usable_idle(soci::session& s) noexcept {
    PGconn* c = pg_connection(s);
    if (!c) return true;
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) return false;
    pollfd p{PQsocket(c), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

// Whether a session coming back from a request can serve the next one: connected, and no
// transaction left open (a write_transaction rolls back before its lease ends; one that could
// not, or any other open transaction, would leak into the next request).
bool usable_returned(soci::session& s) noexcept {
    if (PGconn* c = pg_connection(s)) return PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
    if (sqlite_api::sqlite3* db = sqlite_connection(s)) return sqlite_api::sqlite3_get_autocommit(db) != 0;
    return true;
}

bool connection_broken(soci::session& s) noexcept {
    PGconn* c = pg_connection(s);
    return c && PQstatus(c) != CONNECTION_OK;
}

// How long a writer waits for SQLite's write lock before the request gets 503 (busy).
constexpr auto sqlite_lock_wait = std::chrono::seconds(10);

// SQLite's own busy handler (sqlite3_busy_timeout) sleeps 1, 2, 5, 10 ... then 100 ms between
// tries: a writer that has waited a while sleeps long, and writers arriving later, trying
// after 1 or 2 ms, take the lock in between. Under a steady stream of short write transactions
// (a runner recording results) an early waiter could lose every race until its timeout ran
// out. Trying every millisecond for the whole wait keeps every waiter's chance the same at each
// release, whenever it arrived, for the cost of a thousand wake-ups a second while waiting.
int sqlite_busy_wait(void*, int tries) noexcept {
    thread_local std::chrono::steady_clock::time_point began;
    const auto now = std::chrono::steady_clock::now();
    if (tries == 0) began = now;
    if (now - began >= sqlite_lock_wait) return 0;  // SQLITE_BUSY: unavailable (busy), 503
    ::usleep(1000);
    return 1;
}

void configure_sqlite(soci::session& s) {
    // WAL lets readers run while one writer writes; NORMAL is durable in WAL mode except for the
    // last transactions on power loss, never corrupting.
    s << "PRAGMA journal_mode=WAL";
    s << "PRAGMA foreign_keys=ON";
    s << "PRAGMA synchronous=NORMAL";
    // A second writer waits for the lock instead of failing at once (replacing the busy timeout
    // SOCI set from the connect string).
    if (sqlite_api::sqlite3* db = sqlite_connection(s)) sqlite_api::sqlite3_busy_handler(db, &sqlite_busy_wait, nullptr);
}

int seconds_until(std::chrono::steady_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now()).count();
    return static_cast<int>(std::max<long long>(1, (ms + 999) / 1000));
}

// SOCI's connect errors say "Cannot establish connection to the database." and libpq's reason on
// the next line; the log wants one line.
std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    if (s.size() > 300) s.resize(300);
    return s;
}

}  // namespace

target parse_url(std::string_view url) {
    if (url.starts_with("sqlite:")) {
        std::string_view path = url.substr(7);
        if (path.starts_with("//")) path = path.substr(2);  // sqlite:///abs/path
        if (path.empty() || path.front() != '/')
            throw std::invalid_argument("database URL: sqlite: needs an absolute path (sqlite:/var/lib/x.db)");
        std::string file = percent_decode(path);
        return {backend::sqlite, sqlite_connect_string(file), file};
    }
    if (url.starts_with("postgresql://")) return parse_postgresql(url.substr(13));
    if (url.starts_with("postgres://")) return parse_postgresql(url.substr(11));
    throw std::invalid_argument("database URL must start with sqlite: or postgresql://");
}

// ---- session_lease -------------------------------------------------------------------------

session_lease::session_lease(session_lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_), session_(std::exchange(other.session_, nullptr)) {}

session_lease& session_lease::operator=(session_lease&& other) noexcept {
    if (this != &other) {
        reset();
        pool_ = std::exchange(other.pool_, nullptr);
        slot_ = other.slot_;
        session_ = std::exchange(other.session_, nullptr);
    }
    return *this;
}

session_lease::~session_lease() { reset(); }

void session_lease::reset() noexcept {
    if (pool_) pool_->release(slot_);
    pool_ = nullptr;
    session_ = nullptr;
}

// The slot is leased to this lease alone: its kept objects are touched without the pool's lock.
std::shared_ptr<void>& session_lease::kept_slot(const void* tag) { return pool_->slots_[slot_].kept[tag]; }

void session_lease::forget(const void* tag) noexcept {
    if (pool_) pool_->slots_[slot_].kept.erase(tag);
}

void session_lease::rethrow_classified() const {
    try {
        throw;
    } catch (const unavailable&) {
        throw;
    } catch (const soci::sqlite3_soci_error& e) {
        // SQLITE_BUSY / SQLITE_LOCKED: another writer held the lock past the busy timeout.
        if (e.result() == 5 || e.result() == 6)
            throw unavailable(unavailable::reason::busy, one_line(e.what()), 1);
        throw;
    } catch (const std::exception& e) {
        // Whatever the error says (08xxx, 57P01 "terminating connection due to administrator
        // command", a bare "server closed the connection"), a connection that is now bad is the
        // cause: the statement was fine.
        if (session_ && connection_broken(*session_)) {
            if (pool_) pool_->learn(false, one_line(e.what()));
            throw unavailable(unavailable::reason::unreachable, one_line(e.what()), 1);
        }
        throw;
    }
}

// ---- pool ----------------------------------------------------------------------------------

pool::pool(std::string_view url, pool_options options) : options_(std::move(options)) {
    target t = parse_url(url);
    kind_ = t.kind;
    file_ = t.file;
    connect_string_ = t.connect_string;
    options_.size = std::max<std::size_t>(options_.size, 1);
    options_.streaming = std::min(options_.streaming, options_.size - 1);
    slots_.resize(options_.size);
    for (slot& s : slots_) s.session = connect();
}

pool::~pool() = default;

std::unique_ptr<soci::session> pool::connect() {
    auto s = std::make_unique<soci::session>();
    if (kind_ == backend::sqlite) {
        disable_sqlite_memstatus();
        s->open(soci::sqlite3, connect_string_);
        configure_sqlite(*s);
    } else {
        s->open(soci::postgresql, connect_string_);
    }
    return s;
}

// A free slot, marked leased: an open one if any (no connect needed), else a closed one.
std::optional<std::size_t> pool::take_free(bool streaming) {
    std::optional<std::size_t> chosen;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].leased) continue;
        if (slots_[i].session) {
            chosen = i;
            break;
        }
        if (!chosen) chosen = i;
    }
    if (chosen) {
        slots_[*chosen].leased = true;
        slots_[*chosen].streaming = streaming;
        if (streaming) ++streaming_in_use_;
    }
    return chosen;
}

session_lease pool::lease() { return wait_for(false); }

session_lease pool::lease_streaming() {
    if (options_.streaming == 0) throw std::logic_error("aq::sql::pool: this pool has no streaming leases");
    return wait_for(true);
}

session_lease pool::wait_for(bool streaming) {
    std::unique_lock lk(mu_);
    auto take = [&] {
        return streaming && streaming_in_use_ >= options_.streaming ? std::nullopt : take_free(streaming);
    };
    std::optional<std::size_t> index = take();
    if (!index) {
        // A wait: how long and how it ended go to on_wait (the plugins' pool metrics), outside
        // the lock.
        const auto began = std::chrono::steady_clock::now();
        const auto deadline = began + options_.wait;
        while (!(index = take())) {
            if (freed_.wait_until(lk, deadline) == std::cv_status::timeout) {
                if ((index = take())) break;
                lk.unlock();
                if (options_.on_wait) options_.on_wait(std::chrono::steady_clock::now() - began, false);
                throw unavailable(unavailable::reason::busy,
                                  "no database session became free within " + std::to_string(options_.wait.count()) +
                                      " ms",
                                  1);
            }
        }
        lk.unlock();
        if (options_.on_wait) options_.on_wait(std::chrono::steady_clock::now() - began, true);
    } else {
        lk.unlock();
    }
    return ready(*index);
}

session_lease pool::try_lease_streaming() {
    std::unique_lock lk(mu_);
    if (streaming_in_use_ >= options_.streaming) return {};
    std::optional<std::size_t> index = take_free(true);
    if (!index) return {};
    lk.unlock();
    return ready(*index);
}

session_lease pool::ready(std::size_t index) {
    // The slot is ours (leased); its session is touched without the lock. On any failure the
    // slot goes back closed.
    session_lease out(this, index, nullptr);
    std::unique_ptr<soci::session>& s = slots_[index].session;
    if (s && !usable_idle(*s)) {  // reopened below; a failure there says why
        slots_[index].kept.clear();
        s.reset();
    }
    if (!s) {
        {
            std::lock_guard lk(mu_);
            auto now = std::chrono::steady_clock::now();
            // While the database is known to be down, one request at a time tries it, after the
            // backoff; the others answer at once instead of each waiting for a connect timeout.
            if (!healthy_ && (now < next_connect_ || connecting_ > 0))
                throw unavailable(unavailable::reason::unreachable, "the database is unreachable (reconnecting)",
                                  seconds_until(std::max(next_connect_, now)));
            ++connecting_;
        }
        try {
            s = connect();
        } catch (const std::exception& e) {
            std::string detail = one_line(e.what());
            int retry;
            {
                std::lock_guard lk(mu_);
                --connecting_;
                backoff_ = backoff_.count() == 0 ? options_.reconnect_initial
                                                 : std::min(backoff_ * 2, options_.reconnect_max);
                next_connect_ = std::chrono::steady_clock::now() + backoff_;
                retry = seconds_until(next_connect_);
            }
            learn(false, detail);
            throw unavailable(unavailable::reason::unreachable, detail, retry);
        }
        {
            std::lock_guard lk(mu_);
            --connecting_;
            backoff_ = std::chrono::milliseconds(0);
            next_connect_ = {};
        }
        learn(true, {});
    }
    out.session_ = s.get();
    return out;
}

void pool::release(std::size_t index) noexcept {
    std::unique_ptr<soci::session> dropped;
    std::map<const void*, std::shared_ptr<void>> dropped_kept;  // destroyed first: declared last
    bool broken = false, alive = false;
    {
        std::lock_guard lk(mu_);
        slot& sl = slots_[index];
        if (sl.session && !usable_returned(*sl.session)) {
            broken = connection_broken(*sl.session);
            dropped_kept.swap(sl.kept);
            dropped = std::move(sl.session);
        }
        alive = sl.session != nullptr;
        sl.leased = false;
        if (sl.streaming) --streaming_in_use_;
        sl.streaming = false;
    }
    // All waiters: plain and streaming leases wait on one condition, and the waiter notify_one
    // would pick may be one that cannot use what was freed.
    freed_.notify_all();
    if (broken) learn(false, "a connection broke during a request");
    else if (alive) learn(true, {});
    // `dropped_kept`, then `dropped`, close here, outside the lock.
}

void pool::learn(bool reachable, const std::string& detail) noexcept {
    if (healthy_.exchange(reachable) == reachable) return;
    if (!options_.on_change) return;
    try {
        options_.on_change(reachable, detail);
    } catch (...) {
    }
}

bool pool::probe() noexcept {
    try {
        return run([](soci::session& s) {
            int one = 0;
            s << "select 1", soci::into(one);
            return one == 1;
        });
    } catch (...) {
        return false;
    }
}

bool pool::ready_now() noexcept {
    std::optional<std::size_t> index;
    {
        std::lock_guard lk(mu_);
        index = take_free(false);
    }
    // Every session in use: the work on them says more than a round trip could, and waiting
    // for one would make a busy gateway look unready.
    if (!index) return healthy();
    try {
        session_lease l = ready(*index);  // returns the slot whatever happens
        return l.run([](soci::session& s) {
            int one = 0;
            s << "select 1", soci::into(one);
            return one == 1;
        });
    } catch (...) {
        return false;
    }
}

}  // namespace aq::sql
