// Versioned schema migrations, one version counter per component.
//
// The table aq_schema(component text primary key, version integer) records how far each
// component's schema has been migrated. migrate() runs, in one transaction, every migration of
// the component whose version is above the recorded one, then records the new version. Two
// hosts starting at once on one PostgreSQL database serialize on pg_advisory_xact_lock (SQLite:
// on BEGIN IMMEDIATE), so each migration runs exactly once. A database already migrated past
// what this build knows is refused: an old binary must not write into a newer schema.
//
//   static const std::vector<aq::sql::migration> files_migrations = {
//       {1, {"create table ...", "create index ..."},     // SQLite statements
//           {"create table ...", "create index ..."}},    // PostgreSQL statements
//   };
//   aq::sql::migrate(*pool.lease(), pool.kind(), "files", files_migrations);
//
// A migration may also carry a C++ `step`, run after its statements in the same transaction.
#pragma once

#include "sql/pool.hpp"

#include <soci/session.h>

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aq::sql {

struct migration {
    int version;                          // 1, 2, 3... ascending
    std::vector<std::string> sqlite;      // statements, one per string, run in order
    std::vector<std::string> postgresql;
    // Runs after the statements, in the same transaction, for what SQL alone cannot say (data
    // rewritten by a rule the plugin holds in C++, e.g. rewrite_legacy_owners).
    std::function<void(soci::session&, backend)> step = {};
};

// Brings `component`'s schema to the last migration's version. Returns that version.
// Throws std::runtime_error (or soci::soci_error) and leaves the database unchanged on failure.
int migrate(soci::session& session, backend kind, std::string_view component,
            std::span<const migration> migrations);

}  // namespace aq::sql
