// The throwaway S3-compatible server of the CTest fixture "s3" (tests/support/s3.sh): OpenStack
// Swift with s3api on 127.0.0.1, started once per ctest run.
//
// A suite that needs it is registered with FIXTURES s3; s3_endpoint() then returns a client
// config for it (endpoint, region, keys, path-style addressing) naming a fresh, empty bucket
// that the call has just created, so suites and tests never see each other's objects (with
// create_fresh_bucket = false the named bucket does not exist).
#pragma once

#include "s3/client.hpp"

namespace aqt {

// Throws std::runtime_error when the fixture did not run (the suite is not registered with
// FIXTURES s3, or s3_start failed).
aq::s3::client_config s3_endpoint(bool create_fresh_bucket = true);

// The same for a server started elsewhere with `s3.sh start STATE_DIR` (a benchmark's own):
// `env_file` is STATE_DIR/s3.env.
aq::s3::client_config s3_endpoint_from(const std::string& env_file, bool create_fresh_bucket = true);

}  // namespace aqt
