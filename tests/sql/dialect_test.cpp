// aq::sql::dialect (plugins/sql): raw bytes in and out, claims that several transactions make
// at once, per-key locks, on a SQLite file and on the fixture's real PostgreSQL. Every case runs
// on both backends through the same code, which is the point of the dialect.
#define BOOST_TEST_MODULE sql_dialect
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/postgres.hpp"

#include "sql/dialect.hpp"
#include "sql/pool.hpp"
#include "sql/transaction.hpp"

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

using aq::sql::param;

namespace {

struct backend_db {
    std::string label, url;
    std::filesystem::path dir;
    ~backend_db() {
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
};

std::vector<std::unique_ptr<backend_db>> both_backends() {
    std::vector<std::unique_ptr<backend_db>> out;
    auto lite = std::make_unique<backend_db>();
    lite->label = "sqlite";
    lite->dir = std::filesystem::temp_directory_path() / ("aqt-dialect-" + aqt::random_hex(6));
    std::filesystem::create_directories(lite->dir);
    lite->url = "sqlite:" + (lite->dir / "d.db").string();
    out.push_back(std::move(lite));
    auto pg = std::make_unique<backend_db>();
    pg->label = "postgresql";
    pg->url = aqt::postgres_url();
    out.push_back(std::move(pg));
    return out;
}

std::string every_byte_value(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + (i >> 8)) & 0xFF);
    return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(raw_bytes_go_in_and_come_out_exactly) {
    for (auto& db : both_backends()) {
        BOOST_TEST_CONTEXT(db->label) {
            aq::sql::pool pool(db->url, 1);
            aq::sql::dialect d(pool.kind());
            auto s = pool.lease();
            *s << "create table blobs (k text primary key, n bigint not null, data " + std::string(d.blob_type()) +
                      " not null)";
            const std::vector<std::string> values = {every_byte_value(256), std::string(), std::string(1, '\0'),
                                                     every_byte_value(1 << 20) + "tail"};
            for (std::size_t i = 0; i < values.size(); ++i) {
                long long changed = d.execute(*s, "insert into blobs (k, n, data) values ($1, $2, $3)",
                                              {param::text("key " + std::to_string(i)),
                                               param::integer(static_cast<long long>(i) - 5), param::blob(values[i])});
                BOOST_TEST(changed == 1);
            }
            for (std::size_t i = 0; i < values.size(); ++i) {
                auto got = d.fetch(*s, "select data from blobs where n = $2 and k = $1",
                                   {param::text("key " + std::to_string(i)), param::integer(static_cast<long long>(i) - 5)});
                BOOST_TEST_REQUIRE(got.has_value());
                BOOST_TEST((*got == values[i]), "value " << i << " differs");
                // Stored as bytes, not text: the database's own length agrees.
                long long length = -1;
                std::string k = "key " + std::to_string(i);
                *s << "select length(data) from blobs where k = :k", soci::into(length), soci::use(k);
                BOOST_TEST(length == static_cast<long long>(values[i].size()));
            }
            BOOST_TEST(!d.fetch(*s, "select data from blobs where k = $1", {param::text("absent")}).has_value());
            BOOST_TEST(d.execute(*s, "delete from blobs where n < $1", {param::integer(-3)}) == 2);
        }
    }
}

BOOST_AUTO_TEST_CASE(raw_byte_statements_join_the_sessions_transaction) {
    for (auto& db : both_backends()) {
        BOOST_TEST_CONTEXT(db->label) {
            aq::sql::pool pool(db->url, 1);
            aq::sql::dialect d(pool.kind());
            auto s = pool.lease();
            *s << "create table t (k text primary key, data " + std::string(d.blob_type()) + ")";
            {
                aq::sql::write_transaction tx(*s, pool.kind());
                d.execute(*s, "insert into t (k, data) values ($1, $2)", {param::text("a"), param::blob("x")});
            }  // rolled back
            int n = -1;
            *s << "select count(*) from t", soci::into(n);
            BOOST_TEST(n == 0);
        }
    }
}

// Two transactions claim at once: each gets the rows it asked for, never one of the other's.
BOOST_AUTO_TEST_CASE(claims_take_exactly_their_limit_and_never_the_same_row) {
    for (auto& db : both_backends()) {
        BOOST_TEST_CONTEXT(db->label) {
            aq::sql::pool pool(db->url, 2);
            aq::sql::dialect d(pool.kind());
            auto a = pool.lease();
            *a << "create table work (id integer primary key, owner text not null default '')";
            for (int i = 0; i < 10; ++i) *a << "insert into work (id) values (:i)", soci::use(i);
            const std::string claim = "WITH picked AS MATERIALIZED (SELECT id FROM work WHERE owner = '' ORDER BY id"
                                      " LIMIT :n" + std::string(d.skip_locked()) + ")"
                                      " UPDATE work SET owner = :me WHERE id IN (SELECT id FROM picked)";
            auto claim_by = [&](soci::session& s, const std::string& me) {
                int n = 3;
                soci::statement st = (s.prepare << claim, soci::use(n), soci::use(me));
                st.execute(true);
                return st.get_affected_rows();
            };
            if (pool.kind() == aq::sql::backend::postgresql) {
                // Both open at once: the second skips the rows the first has locked.
                auto b = pool.lease();
                aq::sql::write_transaction ta(*a, pool.kind()), tb(*b, pool.kind());
                BOOST_TEST(claim_by(*a, "a") == 3);
                BOOST_TEST(claim_by(*b, "b") == 3);
                ta.commit();
                tb.commit();
            } else {
                // One writer at a time: the second claim follows the first.
                {
                    aq::sql::write_transaction ta(*a, pool.kind());
                    BOOST_TEST(claim_by(*a, "a") == 3);
                    ta.commit();
                }
                aq::sql::write_transaction tb(*a, pool.kind());
                BOOST_TEST(claim_by(*a, "b") == 3);
                tb.commit();
            }
            std::set<int> by_a, by_b;
            int id = 0;
            std::string owner;
            soci::statement st = (a->prepare << "select id, owner from work where owner <> ''", soci::into(id),
                                  soci::into(owner));
            st.execute();
            while (st.fetch()) (owner == "a" ? by_a : by_b).insert(id);
            BOOST_TEST(by_a.size() == 3u);
            BOOST_TEST(by_b.size() == 3u);
            for (int i : by_a) BOOST_TEST(by_b.count(i) == 0u);
        }
    }
}

// PostgreSQL: a second transaction locking the same key waits (here: gives up after its
// lock_timeout) until the first ends; another key is free. SQLite needs no lock (one writer).
BOOST_AUTO_TEST_CASE(a_key_lock_holds_until_the_transaction_ends) {
    aq::sql::pool pool(aqt::postgres_url(), 2);
    aq::sql::dialect d(pool.kind());
    auto a = pool.lease(), b = pool.lease();
    aq::sql::write_transaction ta(*a, pool.kind());
    d.lock(*a, 7, "owner-1");
    {
        aq::sql::write_transaction tb(*b, pool.kind());
        *b << "set local lock_timeout = '50ms'";
        d.lock(*b, 7, "owner-2");  // another key
        d.lock(*b, 8, "owner-1");  // another space
        BOOST_CHECK_THROW(d.lock(*b, 7, "owner-1"), soci::soci_error);
    }
    ta.commit();
    aq::sql::write_transaction tb(*b, pool.kind());
    *b << "set local lock_timeout = '50ms'";
    BOOST_CHECK_NO_THROW(d.lock(*b, 7, "owner-1"));
    tb.commit();
}

// SQLite's busy error comes out as SOCI's own error with SQLITE_BUSY, which the pool turns
// into sql::unavailable like any SOCI statement's.
BOOST_AUTO_TEST_CASE(sqlite_busy_is_reported_like_socis_own) {
    auto dbs = both_backends();
    const std::string file = dbs[0]->url.substr(7);
    soci::session holder(soci::sqlite3, "db=" + file), other(soci::sqlite3, "db=" + file);
    holder << "PRAGMA journal_mode=WAL";
    holder << "create table t (k text)";
    other << "PRAGMA busy_timeout=20";
    holder << "BEGIN IMMEDIATE";
    holder << "insert into t values ('x')";
    aq::sql::dialect d(aq::sql::backend::sqlite);
    try {
        d.execute(other, "insert into t (k) values ($1)", {param::text("y")});
        BOOST_FAIL("the insert should have found the database locked");
    } catch (const soci::sqlite3_soci_error& e) {
        BOOST_TEST(e.result() == 5);  // SQLITE_BUSY
    }
    holder << "ROLLBACK";
}
