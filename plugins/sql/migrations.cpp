#include "sql/migrations.hpp"

#include "sql/transaction.hpp"

#include <stdexcept>

namespace aq::sql {

int migrate(soci::session& session, backend kind, std::string_view component,
            std::span<const migration> migrations) {
    const std::string name(component);
    write_transaction tx(session, kind);
    if (kind == backend::postgresql) {
        // One lock for all components: migrations are rare and short, and creating aq_schema
        // itself must be serialized ("create table if not exists" races in PostgreSQL).
        session << "select pg_advisory_xact_lock(7233625617253937409)";  // "aq_schem" as int64
    }
    session << "create table if not exists aq_schema (component text primary key, version integer not null)";

    int current = 0;
    soci::indicator ind = soci::i_null;
    session << "select version from aq_schema where component = :c", soci::into(current, ind), soci::use(name);
    if (ind != soci::i_ok) current = 0;

    int latest = migrations.empty() ? 0 : migrations.back().version;
    if (current > latest)
        throw std::runtime_error("database schema of " + name + " is version " + std::to_string(current) +
                                 ", newer than this build knows (" + std::to_string(latest) + ")");
    int applied = current;
    for (const migration& m : migrations) {
        if (m.version <= applied) continue;
        for (const std::string& statement : kind == backend::sqlite ? m.sqlite : m.postgresql)
            session << statement;
        if (m.step) m.step(session, kind);
        applied = m.version;
    }
    if (applied != current) {
        if (ind == soci::i_ok)
            session << "update aq_schema set version = :v where component = :c", soci::use(applied), soci::use(name);
        else
            session << "insert into aq_schema (component, version) values (:c, :v)", soci::use(name), soci::use(applied);
    }
    tx.commit();
    return applied;
}

}  // namespace aq::sql
