// aq::sql::pool (plugins/sql): bounded waits, the streaming budget, sessions that come back
// dirty, and PostgreSQL connections that break, on SQLite files and on real PostgreSQL servers
// (the shared fixture, and one of the test's own to stop).
#define BOOST_TEST_MODULE sql_pool
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/postgres.hpp"
#include "support/wait_until.hpp"

#include "sql/dialect.hpp"
#include "sql/pool.hpp"

#include <soci/soci.h>

#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using aq::sql::unavailable;

namespace {

struct temp_dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("aqt-pool-" + aqt::random_hex(6));
    temp_dir() { std::filesystem::create_directories(path); }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

aq::sql::pool_options options(std::size_t size, std::size_t streaming = 0, std::chrono::milliseconds wait = 200ms) {
    aq::sql::pool_options o;
    o.size = size;
    o.streaming = streaming;
    o.wait = wait;
    return o;
}

int backend_pid(soci::session& s) {
    int pid = 0;
    s << "select pg_backend_pid()", soci::into(pid);
    return pid;
}

// Terminates a backend from a connection of its own, as an administrator (or a crash) would.
void terminate_backend(const std::string& url, int pid) {
    PGconn* c = PQconnectdb(url.c_str());
    BOOST_TEST_REQUIRE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    PGresult* r = PQexec(c, ("select pg_terminate_backend(" + std::to_string(pid) + ", 5000)").c_str());
    BOOST_TEST_REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK, PQerrorMessage(c));
    BOOST_TEST(std::string(PQgetvalue(r, 0, 0)) == "t");
    PQclear(r);
    PQfinish(c);
}

// Records a pool's reachability reports.
struct reports {
    std::mutex mu;
    std::vector<bool> seen;
    std::function<void(bool, const std::string&)> hook() {
        return [this](bool reachable, const std::string&) {
            std::lock_guard lk(mu);
            seen.push_back(reachable);
        };
    }
    std::vector<bool> get() {
        std::lock_guard lk(mu);
        return seen;
    }
};

// A one-session pool on `url` whose reports are recorded.
struct watched_pool {
    reports seen;
    aq::sql::pool pool;
    explicit watched_pool(const std::string& url, std::size_t size = 1,
                          std::chrono::milliseconds reconnect_initial = aq::sql::pool_options{}.reconnect_initial)
        : pool(url, watched(size, reconnect_initial, seen)) {}
    static aq::sql::pool_options watched(std::size_t size, std::chrono::milliseconds reconnect_initial, reports& r) {
        auto o = options(size);
        o.reconnect_initial = reconnect_initial;
        o.on_change = r.hook();
        return o;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_lease_waits_at_most_the_configured_time_then_is_busy) {
    temp_dir d;
    aq::sql::pool pool("sqlite:" + (d.path / "db").string(), options(2, 0, 300ms));
    auto a = pool.lease();
    auto b = pool.lease();
    auto started = std::chrono::steady_clock::now();
    try {
        pool.lease();
        BOOST_FAIL("a third lease of two sessions succeeded");
    } catch (const unavailable& e) {
        BOOST_TEST((e.why() == unavailable::reason::busy));
        BOOST_TEST(e.retry_after_seconds() == 1);
        BOOST_TEST(std::string(e.what()) == "no database session became free within 300 ms");
    }
    BOOST_TEST((std::chrono::steady_clock::now() - started >= 300ms));
    // A waiter gets the session another returns.
    std::thread giver([&] {
        std::this_thread::sleep_for(50ms);
        a.reset();
    });
    auto c = pool.lease();
    giver.join();
    BOOST_TEST(static_cast<bool>(c));
    BOOST_TEST(pool.healthy());
}

BOOST_AUTO_TEST_CASE(streaming_leases_never_take_the_last_sessions) {
    temp_dir d;
    aq::sql::pool pool("sqlite:" + (d.path / "db").string(), options(3, 1));
    auto s1 = pool.try_lease_streaming();
    BOOST_TEST(static_cast<bool>(s1));
    BOOST_TEST(!pool.try_lease_streaming());  // the budget is one
    auto a = pool.lease();
    auto b = pool.lease();  // the two short sessions are still there
    BOOST_TEST((static_cast<bool>(a) && static_cast<bool>(b)));
    s1.reset();
    a.reset();
    auto s2 = pool.try_lease_streaming();
    BOOST_TEST(static_cast<bool>(s2));
    // A budget as large as the pool is cut to leave one session for short work.
    aq::sql::pool small("sqlite:" + (d.path / "db2").string(), options(2, 5));
    auto t1 = small.try_lease_streaming();
    BOOST_TEST(static_cast<bool>(t1));
    BOOST_TEST(!small.try_lease_streaming());
}

BOOST_AUTO_TEST_CASE(a_session_returned_inside_a_transaction_is_not_handed_out_again) {
    temp_dir d;
    aq::sql::pool pool("sqlite:" + (d.path / "db").string(), options(1));
    pool.run([](soci::session& s) { s << "create table t (x integer)"; });
    {
        auto l = pool.lease();
        l->begin();
        *l << "insert into t values (1)";
    }  // neither committed nor rolled back
    int n = -1;
    pool.run([&](soci::session& s) {
        s.begin();  // would fail inside the leaked transaction
        s << "select count(*) from t", soci::into(n);
        s.commit();
    });
    BOOST_TEST(n == 0);
}

BOOST_AUTO_TEST_CASE(sqlite_locked_past_the_busy_timeout_is_unavailable_not_an_error) {
    temp_dir d;
    const std::string url = "sqlite:" + (d.path / "db").string();
    aq::sql::pool pool(url, options(1));
    pool.run([](soci::session& s) {
        s << "create table t (x integer)";
        s << "PRAGMA busy_timeout=100";  // this test's lock need not wait 10 s
    });
    aq::sql::pool other(url, options(1));  // another connection, holding the write lock
    auto holder = other.lease();
    *holder << "BEGIN IMMEDIATE";
    try {
        pool.run([](soci::session& s) { s << "insert into t values (1)"; });
        BOOST_FAIL("a write under another writer's lock succeeded");
    } catch (const unavailable& e) {
        BOOST_TEST((e.why() == unavailable::reason::busy));
    }
    *holder << "ROLLBACK";
    pool.run([](soci::session& s) { s << "insert into t values (1)"; });
}

BOOST_AUTO_TEST_CASE(a_connection_the_server_closed_is_replaced_before_use) {
    const std::string url = aqt::postgres_url();
    watched_pool w(url);
    auto& pool = w.pool;
    int first = pool.run([](soci::session& s) { return backend_pid(s); });
    terminate_backend(url, first);
    // No error reaches the caller: the closed session is found at lease time and reopened.
    int second = pool.run([](soci::session& s) { return backend_pid(s); });
    BOOST_TEST(second != first);
    BOOST_TEST(pool.healthy());
    BOOST_TEST(w.seen.get().empty());
}

BOOST_AUTO_TEST_CASE(a_connection_that_breaks_during_a_request_is_unavailable_then_replaced) {
    const std::string url = aqt::postgres_url();
    watched_pool w(url);
    auto& pool = w.pool;
    {
        auto l = pool.lease();
        terminate_backend(url, backend_pid(*l));
        try {
            l.run([](soci::session& s) { s << "select 1"; });
            BOOST_FAIL("a statement on a terminated connection succeeded");
        } catch (const unavailable& e) {
            BOOST_TEST((e.why() == unavailable::reason::unreachable));
            BOOST_TEST(e.retry_after_seconds() == 1);
        }
        BOOST_TEST(!pool.healthy());
    }
    // Any other error is left alone.
    BOOST_CHECK_THROW(pool.run([](soci::session& s) { s << "select * from no_such_table"; }), soci::soci_error);
    BOOST_TEST(pool.probe());
    BOOST_TEST(pool.healthy());
    BOOST_TEST((w.seen.get() == std::vector<bool>{false, true}));
}

BOOST_AUTO_TEST_CASE(a_server_that_is_down_fails_fast_with_backoff_and_is_used_again_once_back) {
    aqt::postgres_server server;
    // A first backoff of 3 s, not 200 ms: the second lease below must fall inside it, also on a
    // loaded machine.
    watched_pool w(server.url(), 2, 3s);
    auto& pool = w.pool;
    BOOST_TEST(pool.probe());
    server.stop();
    // The idle sessions are found closed; reconnecting is refused.
    try {
        pool.lease();
        BOOST_FAIL("a lease while the server is down succeeded");
    } catch (const unavailable& e) {
        BOOST_TEST((e.why() == unavailable::reason::unreachable));
        BOOST_TEST(std::string(e.what()).find("Cannot establish connection") != std::string::npos, e.what());
    }
    BOOST_TEST(!pool.healthy());
    BOOST_TEST(!pool.probe());
    // Within the backoff the pool does not try again: the answer says how long to wait.
    try {
        pool.lease();
        BOOST_FAIL("a lease while the server is down succeeded");
    } catch (const unavailable& e) {
        BOOST_TEST(std::string(e.what()) == "the database is unreachable (reconnecting)");
        BOOST_TEST((e.retry_after_seconds() >= 1 && e.retry_after_seconds() <= 5));
    }
    server.start();
    BOOST_TEST(aqt::wait_until([&] { return pool.probe(); }, 30s));
    BOOST_TEST(pool.healthy());
    auto seen = w.seen.get();
    BOOST_TEST_REQUIRE(seen.size() >= 2u);
    BOOST_TEST(seen.front() == false);
    BOOST_TEST(seen.back() == true);
}

BOOST_AUTO_TEST_CASE(on_wait_is_told_of_every_lease_that_waited_and_how_it_ended) {
    temp_dir d;
    struct waited {
        std::chrono::steady_clock::duration time;
        bool leased;
    };
    std::mutex mu;
    std::vector<waited> waits;
    // One session; a lease waits at most `wait`.
    auto counted = [&](std::chrono::milliseconds wait) {
        auto o = options(1, 0, wait);
        o.on_wait = [&](std::chrono::steady_clock::duration t, bool leased) {
            std::lock_guard lock(mu);
            waits.push_back({t, leased});
        };
        return o;
    };
    {
        aq::sql::pool pool("sqlite:" + (d.path / "a").string(), counted(200ms));
        { auto free_at_once = pool.lease(); }  // a free session: no wait, no call
        BOOST_TEST(waits.empty());
        auto held = pool.lease();
        BOOST_CHECK_THROW(pool.lease(), unavailable);  // waits 200 ms, then gives up
    }
    {
        aq::sql::pool pool("sqlite:" + (d.path / "b").string(), counted(60000ms));
        auto held = pool.lease();
        std::thread giver([&] {
            std::this_thread::sleep_for(100ms);
            held.reset();
        });
        auto got = pool.lease();  // waits until the giver returns the session
        giver.join();
    }
    std::lock_guard lock(mu);
    BOOST_TEST_REQUIRE(waits.size() == 2u);
    BOOST_TEST(waits[0].leased == false);
    BOOST_TEST((waits[0].time >= 200ms));
    BOOST_TEST(waits[1].leased == true);
    BOOST_TEST((waits[1].time >= 100ms));
}

BOOST_AUTO_TEST_CASE(ready_now_asks_a_free_session_and_never_waits_for_a_busy_one) {
    aqt::postgres_server server;
    aq::sql::pool pool(server.url(), options(1, 0, 60000ms));
    BOOST_TEST(pool.ready_now());
    {
        auto busy = pool.lease();
        const auto asked = std::chrono::steady_clock::now();
        BOOST_TEST(pool.ready_now());  // every session at work: the last thing learned, at once
        // Not a timing assertion on a loaded machine: waiting would take the whole 60 s.
        BOOST_TEST((std::chrono::steady_clock::now() - asked < 30s));
    }
    server.stop();
    BOOST_TEST(!pool.ready_now());
    BOOST_TEST(!pool.ready_now());  // within the backoff: at once, still not ready
    server.start();
    bool back = false;
    for (int i = 0; i < 100 && !back; ++i) {
        back = pool.ready_now();
        if (!back) std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(back);
}

// session_lease::kept: one object per session and tag, made once, reused by later leases of the
// session, and made again for a session opened after the old one closed.
BOOST_AUTO_TEST_CASE(kept_objects_live_as_long_as_their_session) {
    const std::string url = aqt::postgres_url();
    watched_pool w(url);
    auto& pool = w.pool;
    static const int tag = 0;
    int made = 0;
    auto kept_pid = [&] {
        auto l = pool.lease();
        return l.run([&](soci::session&) {
            return l.kept<int>(&tag, [&](soci::session& s) {
                ++made;
                return std::make_unique<int>(backend_pid(s));
            });
        });
    };
    const int first = kept_pid();
    BOOST_TEST(kept_pid() == first);
    BOOST_TEST(made == 1);
    terminate_backend(url, first);
    const int second = kept_pid();  // the closed session was replaced, its kept int dropped
    BOOST_TEST(second != first);
    BOOST_TEST(made == 2);
    {
        auto l = pool.lease();
        l.forget(&tag);
    }
    BOOST_TEST(kept_pid() == second);
    BOOST_TEST(made == 3);
}

// A kept SQLite statement whose pass was ended (dialect::end_pass) holds no read snapshot: what
// another connection commits afterwards is seen by the session's next queries, and the session
// can still write. Left stepped, it would keep its read transaction open, so the count below
// would stay 1 and BEGIN IMMEDIATE would fail with SQLITE_BUSY_SNAPSHOT.
BOOST_AUTO_TEST_CASE(a_kept_sqlite_statement_ended_after_its_pass_holds_no_snapshot) {
    temp_dir d;
    const std::string url = "sqlite:" + (d.path / "db").string();
    aq::sql::pool pool(url, options(1));
    aq::sql::pool other(url, options(1));
    const aq::sql::dialect dialect(pool.kind());
    pool.run([](soci::session& s) { s << "create table t (x integer)"; });
    other.run([](soci::session& s) { s << "insert into t values (1), (2)"; });
    struct kept_select {
        int x = 0;
        soci::statement st;
        explicit kept_select(soci::session& s) : st((s.prepare << "select x from t order by x", soci::into(x))) {}
    };
    static const int tag = 0;
    auto l = pool.lease();
    auto& q = l.kept<kept_select>(&tag, [](soci::session& s) { return std::make_unique<kept_select>(s); });
    q.st.execute();
    BOOST_TEST_REQUIRE(q.st.fetch());  // the first row of two: the statement is still stepping
    BOOST_TEST(q.x == 1);
    dialect.end_pass(q.st);
    other.run([](soci::session& s) { s << "insert into t values (3)"; });
    int n = 0;
    *l << "select count(*) from t", soci::into(n);
    BOOST_TEST(n == 3);
    *l << "BEGIN IMMEDIATE";
    *l << "insert into t values (4)";
    *l << "COMMIT";
    q.st.execute();
    int rows = 0;
    while (q.st.fetch()) ++rows;
    BOOST_TEST(rows == 4);
}
