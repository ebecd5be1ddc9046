// The throwaway PostgreSQL fixture: reachable, and a fresh database per call.
#define BOOST_TEST_MODULE support_postgres
#include <boost/test/unit_test.hpp>

#include "support/postgres.hpp"

#include <libpq-fe.h>

#include <memory>

namespace {
std::string current_database(const std::string& url) {
    std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(url.c_str()), &PQfinish);
    BOOST_TEST_REQUIRE(PQstatus(conn.get()) == CONNECTION_OK, PQerrorMessage(conn.get()));
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn.get(), "select current_database()"), &PQclear);
    BOOST_TEST_REQUIRE(PQresultStatus(res.get()) == PGRES_TUPLES_OK);
    return PQgetvalue(res.get(), 0, 0);
}
}  // namespace

BOOST_AUTO_TEST_CASE(each_call_gets_its_own_empty_database) {
    std::string a = aqt::postgres_url(), b = aqt::postgres_url();
    BOOST_TEST(a != b);
    BOOST_TEST(a.rfind("postgresql://", 0) == 0u);
    BOOST_TEST(current_database(a) != current_database(b));
}

BOOST_AUTO_TEST_CASE(the_shared_database_is_reachable) {
    BOOST_TEST(current_database(aqt::postgres_url(false)) == "aqt");
}
