#include "postgres.hpp"

#include "aqt_build_paths.h"
#include "digest.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>


namespace aqt {

namespace {

std::string fixture_url() {
    std::ifstream in(AQ_TEST_POSTGRES_URL_FILE);
    std::string url;
    if (!in || !std::getline(in, url) || url.empty())
        throw std::runtime_error(std::string("no throwaway PostgreSQL: ") + AQ_TEST_POSTGRES_URL_FILE +
                                 " is missing; register the suite with FIXTURES postgres "
                                 "(tests/support/postgres.sh writes it)");
    return url;
}

}  // namespace

std::string postgres_url(bool create_fresh_db) {
    std::string url = fixture_url();
    if (!create_fresh_db) return url;

    std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(url.c_str()), &PQfinish);
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect to the test PostgreSQL: " +
                                 std::string(conn ? PQerrorMessage(conn.get()) : "out of memory"));
    std::string name = "aqt_" + random_hex(8);
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(
        PQexec(conn.get(), ("CREATE DATABASE " + name).c_str()), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK)
        throw std::runtime_error("CREATE DATABASE " + name + " failed: " + PQerrorMessage(conn.get()));

    auto slash = url.rfind('/');
    auto query = url.find('?', slash);
    return url.substr(0, slash + 1) + name + (query == std::string::npos ? "" : url.substr(query));
}

postgres_server::postgres_server() {
    state_ = (std::filesystem::temp_directory_path() / ("aqt-pgstate-" + random_hex(6))).string();
    std::filesystem::create_directories(state_);
    run("start", "durable");
    std::ifstream in(state_ + "/url");
    if (!in || !std::getline(in, url_) || url_.empty()) throw std::runtime_error("postgres.sh start wrote no URL");
}

postgres_server::~postgres_server() {
    try {
        run("stop");
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(state_, ec);
}

void postgres_server::stop() { run("halt"); }
void postgres_server::kill_postmaster() { run("crash"); }
void postgres_server::start() { run("resume"); }

void postgres_server::run(const char* command, const char* option) {
    std::string line = std::string("bash '") + AQ_TEST_SOURCE_DIR + "/tests/support/postgres.sh' " + command + " '" +
                       state_ + "' " + option + " >&2";
    if (std::system(line.c_str()) != 0) throw std::runtime_error(std::string("postgres.sh ") + command + " failed");
}

}  // namespace aqt
