#include "sql/transaction.hpp"

namespace aq::sql {

write_transaction::write_transaction(soci::session& session, backend kind) : session_(session) {
    if (kind == backend::sqlite)
        session_ << "BEGIN IMMEDIATE";
    else
        session_.begin();
}

write_transaction::~write_transaction() { rollback(); }

void write_transaction::commit() {
    session_.commit();
    open_ = false;
}

void write_transaction::rollback() noexcept {
    if (!open_) return;
    open_ = false;
    try {
        session_.rollback();
    } catch (...) {
        // The connection is broken or the transaction is already gone; either way nothing of
        // it was committed.
    }
}

}  // namespace aq::sql
