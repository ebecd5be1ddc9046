#include "s3.hpp"

#include "aqt_build_paths.h"
#include "digest.hpp"

#include <fstream>
#include <map>
#include <stdexcept>

namespace aqt {

aq::s3::client_config s3_endpoint(bool create_fresh_bucket) {
    return s3_endpoint_from(AQ_TEST_S3_ENV_FILE, create_fresh_bucket);
}

aq::s3::client_config s3_endpoint_from(const std::string& env_file, bool create_fresh_bucket) {
    std::ifstream in(env_file);
    if (!in)
        throw std::runtime_error("no throwaway S3 server: " + env_file +
                                 " is missing; register the suite with FIXTURES s3 (tests/support/s3.sh writes it)");
    std::map<std::string, std::string> env;
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (const char* key : {"endpoint", "region", "access_key", "secret_key"})
        if (env[key].empty()) throw std::runtime_error(env_file + " has no " + key);

    aq::s3::client_config cfg;
    cfg.endpoint = env["endpoint"];
    cfg.region = env["region"];
    cfg.access_key = env["access_key"];
    cfg.secret_key = env["secret_key"];
    cfg.style = aq::s3::addressing::path;
    cfg.bucket = "aqt-" + random_hex(8);
    if (create_fresh_bucket) aq::s3::client(cfg).create_bucket();
    return cfg;
}

}  // namespace aqt
