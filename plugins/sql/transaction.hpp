// A transaction that will write, begun so that it cannot fail half-way for lock reasons.
//
// SQLite: "BEGIN IMMEDIATE" takes the database's single write lock up front (waiting up to the
// busy timeout). A plain deferred BEGIN that reads first and writes later fails at once with
// SQLITE_BUSY when another connection committed in between, which would turn ordinary
// concurrency into errors. PostgreSQL: a plain BEGIN (READ COMMITTED); use row locks or
// pg_advisory_xact_lock where a read decides a write.
//
// Destroying an uncommitted transaction rolls it back, so an exception (or a client that went
// away) leaves nothing behind.
#pragma once

#include "sql/pool.hpp"

#include <soci/session.h>

namespace aq::sql {

class write_transaction {
public:
    write_transaction(soci::session& session, backend kind);
    ~write_transaction();
    write_transaction(const write_transaction&) = delete;
    write_transaction& operator=(const write_transaction&) = delete;

    void commit();
    void rollback() noexcept;

private:
    soci::session& session_;
    bool open_ = true;
};

}  // namespace aq::sql
