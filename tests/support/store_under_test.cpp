#include "store_under_test.hpp"

#include "digest.hpp"
#include "gateway.hpp"
#include "postgres.hpp"
#include "s3.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace json = boost::json;

namespace aqt {
namespace {

std::string query(const std::string& database, const std::string& sql) {
    if (database.starts_with("sqlite:")) {
        sqlite3* raw = nullptr;
        int rc = sqlite3_open_v2(database.substr(7).c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
        std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, &sqlite3_close);
        if (rc != SQLITE_OK) throw std::runtime_error(database + ": " + sqlite3_errstr(rc));
        sqlite3_busy_timeout(db.get(), 10000);
        sqlite3_stmt* raw_st = nullptr;
        if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &raw_st, nullptr) != SQLITE_OK)
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db.get()));
        std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw_st, &sqlite3_finalize);
        rc = sqlite3_step(st.get());
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db.get()));
        if (rc == SQLITE_ROW && sqlite3_column_text(st.get(), 0))
            return reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
        return "";
    }
    std::unique_ptr<PGconn, void (*)(PGconn*)> c(PQconnectdb(database.c_str()), &PQfinish);
    if (PQstatus(c.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(c.get()));
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(c.get(), sql.c_str()), &PQclear);
    auto status = PQresultStatus(r.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
        throw std::runtime_error(sql + ": " + PQerrorMessage(c.get()));
    return status == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

}  // namespace

std::string sql_value(const std::string& database, const std::string& sql) { return query(database, sql); }
void sql_exec(const std::string& database, const std::string& sql) { query(database, sql); }

std::string suite_store() {
    const char* v = std::getenv("AQ_TEST_STORE");
    return v ? v : "filesystem";  // the constructor checks the name
}

bool suite_on_postgres() {
    const char* v = std::getenv("AQ_TEST_POSTGRES");
    if (v && std::string_view(v) != "1")
        throw std::invalid_argument("AQ_TEST_POSTGRES is \"1\" or unset, not \"" + std::string(v) + "\"");
    return v != nullptr;
}

store_under_test::store_under_test() : store_under_test(suite_store(), suite_on_postgres()) {}

store_under_test::store_under_test(std::string store, bool postgres) : store_(std::move(store)), postgres_(postgres) {
    if (store_ != "filesystem" && store_ != "database" && store_ != "s3")
        throw std::invalid_argument("no such store: " + store_);
    if (postgres_) database_ = postgres_url();
    if (store_ == "filesystem" && postgres_) {
        own_dir_ = std::filesystem::temp_directory_path() / ("aqt-store-" + random_hex(6));
        folder_ = own_dir_ / "files";
        std::filesystem::create_directories(folder_);
    }
    if (store_ == "s3") s3_ = s3_endpoint();
}

store_under_test::~store_under_test() {
    if (!own_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(own_dir_, ec);
    }
}

std::string store_under_test::label() const { return store_ + (postgres_ ? " on PostgreSQL" : " on SQLite"); }

json::object store_under_test::files_config(json::object extra) const {
    if (postgres_) extra["database"] = database_;
    if (store_ == "filesystem" && !postgres_) return extra;  // the embedded default
    extra["store"] = store_;
    if (store_ == "filesystem") extra["filesystem"] = json::object{{"path", folder_.string()}};
    if (s3_)
        extra["s3"] = json::object{{"endpoint", s3_->endpoint}, {"bucket", s3_->bucket},   {"region", s3_->region},
                                   {"addressing", "path"},       {"access_key", s3_->access_key},
                                   {"secret_key", s3_->secret_key}, {"prefix", "files/"}};
    return extra;
}

void store_under_test::attach(const gateway& gw) {
    if (postgres_) return;
    database_ = "sqlite:" + (gw.dir() / "aqueduct.db").string();
    if (store_ == "filesystem") folder_ = gw.dir() / "files";
}

std::size_t store_under_test::content_objects() const {
    if (store_ == "filesystem") {
        std::size_t n = 0;
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(folder_, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->is_regular_file()) ++n;
        return n;
    }
    if (store_ == "s3") return aq::s3::client(*s3_).list_all_objects("files/").size();
    return static_cast<std::size_t>(std::stoll(sql_value(database_, "select count(*) from file_chunks")));
}

std::size_t store_under_test::unfinished_uploads() const {
    if (store_ != "s3") return 0;
    aq::s3::client c(*s3_);
    std::size_t n = 0;
    std::string key_marker, id_marker;
    do {
        auto page = c.list_multipart_uploads("files/", key_marker, id_marker);
        n += page.uploads.size();
        key_marker = page.next_key_marker;
        id_marker = page.next_upload_id_marker;
    } while (!key_marker.empty() || !id_marker.empty());
    return n;
}

long long store_under_test::rows() const { return std::stoll(sql_value(database_, "select count(*) from files")); }

}  // namespace aqt
