#include "sql/dialect.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <soci/soci.h>

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

namespace aq::sql {
namespace {

// ---- PostgreSQL: libpq binary parameters on SOCI's connection --------------------------------

PGconn* pg_connection(soci::session& session) {
    // By name, not dynamic_cast: libsoci_postgresql does not export the backend's typeinfo.
    if (session.get_backend_name() != "postgresql" || !session.get_backend())
        throw std::logic_error("aq::sql::dialect: the session is not an open PostgreSQL session");
    return static_cast<soci::postgresql_session_backend*>(session.get_backend())->conn_;
}

struct pg_result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using pg_result = std::unique_ptr<PGresult, pg_result_deleter>;

pg_result pg_run(soci::session& session, std::string_view sql, std::initializer_list<param> params,
                 int result_format) {
    // libpq reads text parameters up to a NUL and binary ones by length: text and integers are
    // copied into terminated strings first. Types are left to the server to infer from the
    // statement (write a cast where it cannot, e.g. "select $1::bigint").
    std::vector<std::string> text;
    text.reserve(params.size());
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const param& p : params) {
        if (p.kind == param::type::blob) {
            values.push_back(p.bytes.data());
            lengths.push_back(static_cast<int>(p.bytes.size()));
            formats.push_back(1);
            continue;
        }
        text.push_back(p.kind == param::type::integer ? std::to_string(p.number) : std::string(p.bytes));
        values.push_back(text.back().c_str());
        lengths.push_back(static_cast<int>(text.back().size()));
        formats.push_back(0);
    }
    const std::string statement(sql);
    pg_result r(PQexecParams(pg_connection(session), statement.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), lengths.data(), formats.data(), result_format));
    if (!r) throw std::runtime_error("PostgreSQL: out of memory");
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw std::runtime_error(std::string("PostgreSQL: ") + PQresultErrorMessage(r.get()));
    return r;
}

// ---- SQLite: the C API on SOCI's connection --------------------------------------------------

sqlite_api::sqlite3* sqlite_connection(soci::session& session) {
    if (session.get_backend_name() != "sqlite3" || !session.get_backend())
        throw std::logic_error("aq::sql::dialect: the session is not an open SQLite session");
    return static_cast<soci::sqlite3_session_backend*>(session.get_backend())->conn_;
}

// A prepared statement with its parameters bound; finalized when destroyed. Errors are thrown
// as SOCI's own sqlite3_soci_error, so that the pool classifies SQLITE_BUSY (a writer that held
// the lock past the busy timeout) exactly as it does for SOCI statements.
class sqlite_statement {
public:
    sqlite_statement(soci::session& session, std::string_view sql, std::initializer_list<param> params)
        : db_(sqlite_connection(session)) {
        check(sqlite_api::sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr));
        int n = 0;
        for (const param& p : params) {
            const std::string name = "$" + std::to_string(++n);
            const int index = sqlite_api::sqlite3_bind_parameter_index(stmt_, name.c_str());
            if (index == 0) throw std::logic_error("aq::sql::dialect: the statement has no parameter " + name);
            // A null pointer would bind NULL: empty values point at a static empty string.
            const char* data = p.bytes.empty() ? "" : p.bytes.data();
            switch (p.kind) {
            case param::type::text:
                check(sqlite_api::sqlite3_bind_text64(stmt_, index, data, p.bytes.size(), sqlite_api::sqlite3_destructor_type(nullptr), SQLITE_UTF8));
                break;
            case param::type::integer: check(sqlite_api::sqlite3_bind_int64(stmt_, index, p.number)); break;
            case param::type::blob:
                check(sqlite_api::sqlite3_bind_blob64(stmt_, index, data, p.bytes.size(), sqlite_api::sqlite3_destructor_type(nullptr)));
                break;
            }
        }
    }
    ~sqlite_statement() { sqlite_api::sqlite3_finalize(stmt_); }
    sqlite_statement(const sqlite_statement&) = delete;
    sqlite_statement& operator=(const sqlite_statement&) = delete;

    // True while a row is available.
    bool step() {
        int rc = sqlite_api::sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        check(rc);
        return false;
    }
    sqlite_api::sqlite3_stmt* get() const noexcept { return stmt_; }
    sqlite_api::sqlite3* db() const noexcept { return db_; }

private:
    void check(int rc) const {
        if (rc == SQLITE_OK) return;
        throw soci::sqlite3_soci_error(std::string("SQLite: ") + sqlite_api::sqlite3_errmsg(db_), rc);
    }

    sqlite_api::sqlite3* db_;
    sqlite_api::sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

void dialect::end_pass(soci::statement& st) const noexcept {
    if (kind_ != backend::sqlite) return;
    // By name, like the sessions above: SOCI's sqlite3 backend keeps its sqlite3_stmt public.
    if (auto* b = static_cast<soci::sqlite3_statement_backend*>(st.get_backend()); b && b->stmt_)
        sqlite_api::sqlite3_reset(b->stmt_);
}

std::string_view dialect::skip_locked() const noexcept {
    return kind_ == backend::postgresql ? " FOR UPDATE SKIP LOCKED" : "";
}

void dialect::lock(soci::session& session, std::int32_t space, const std::string& key) const {
    if (kind_ != backend::postgresql) return;  // BEGIN IMMEDIATE holds SQLite's only write lock
    session << "select pg_advisory_xact_lock(:s, hashtext(:k))", soci::use(space), soci::use(key);
}

long long dialect::execute(soci::session& session, std::string_view sql, std::initializer_list<param> params) const {
    if (kind_ == backend::postgresql) {
        pg_result r = pg_run(session, sql, params, 0);
        const char* n = PQcmdTuples(r.get());
        return n && *n ? std::atoll(n) : 0;
    }
    sqlite_statement st(session, sql, params);
    while (st.step()) {
    }
    return sqlite_api::sqlite3_changes(st.db());
}

std::optional<std::string> dialect::fetch(soci::session& session, std::string_view sql,
                                          std::initializer_list<param> params) const {
    if (kind_ == backend::postgresql) {
        pg_result r = pg_run(session, sql, params, 1);
        if (PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0)) return std::nullopt;
        return std::string(PQgetvalue(r.get(), 0, 0), static_cast<std::size_t>(PQgetlength(r.get(), 0, 0)));
    }
    sqlite_statement st(session, sql, params);
    if (!st.step() || sqlite_api::sqlite3_column_type(st.get(), 0) == SQLITE_NULL) return std::nullopt;
    const void* data = sqlite_api::sqlite3_column_blob(st.get(), 0);
    const int size = sqlite_api::sqlite3_column_bytes(st.get(), 0);
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

}  // namespace aq::sql
