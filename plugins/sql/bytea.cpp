#include "sql/bytea.hpp"

#include <soci/postgresql/soci-postgresql.h>

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

namespace aq::sql::bytea {
namespace {

PGconn* connection_of(soci::session& session) {
    // By name, not dynamic_cast: libsoci_postgresql does not export the backend's typeinfo.
    if (session.get_backend_name() != "postgresql" || !session.get_backend())
        throw std::logic_error("aq::sql::bytea needs an open PostgreSQL session");
    return static_cast<soci::postgresql_session_backend*>(session.get_backend())->conn_;
}

struct result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

result_ptr run(soci::session& session, const char* sql, std::initializer_list<param> params, int result_format) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    values.reserve(params.size());
    for (const param& p : params) {
        // libpq reads text parameters up to a NUL, binary ones by length: text values must be
        // terminated, so they are copied into NUL-terminated strings below.
        values.push_back(p.value.data());
        lengths.push_back(static_cast<int>(p.value.size()));
        formats.push_back(p.binary ? 1 : 0);
    }
    std::vector<std::string> text_copies;
    text_copies.reserve(params.size());
    std::size_t i = 0;
    for (const param& p : params) {
        if (!p.binary) {
            text_copies.emplace_back(p.value);
            values[i] = text_copies.back().c_str();
        }
        ++i;
    }
    result_ptr r(PQexecParams(connection_of(session), sql, static_cast<int>(values.size()), nullptr, values.data(),
                              lengths.data(), formats.data(), result_format));
    if (!r) throw std::runtime_error("PostgreSQL: out of memory");
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw std::runtime_error(std::string("PostgreSQL: ") + PQresultErrorMessage(r.get()));
    return r;
}

}  // namespace

long long execute(soci::session& session, const char* sql, std::initializer_list<param> params) {
    result_ptr r = run(session, sql, params, 0);
    const char* n = PQcmdTuples(r.get());
    return n && *n ? std::atoll(n) : 0;
}

std::optional<std::string> fetch(soci::session& session, const char* sql, std::initializer_list<param> params) {
    result_ptr r = run(session, sql, params, 1);
    if (PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0)) return std::nullopt;
    return std::string(PQgetvalue(r.get(), 0, 0), static_cast<std::size_t>(PQgetlength(r.get(), 0, 0)));
}

}  // namespace aq::sql::bytea
