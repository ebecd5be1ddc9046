// The throwaway PostgreSQL server of the CTest fixture "postgres" (tests/support/postgres.sh).
//
// A suite that needs it is registered with FIXTURES postgres; postgres_url() then returns a
// connection URI "postgresql://user:password@127.0.0.1:PORT/dbname". By default every call
// creates a fresh, empty database, so suites (and tests) never see each other's rows.
#pragma once

#include <string>

namespace aqt {

// Throws std::runtime_error when the fixture did not run (the suite is not registered with
// FIXTURES postgres, or pg_start failed).
std::string postgres_url(bool create_fresh_db = true);

}  // namespace aqt
