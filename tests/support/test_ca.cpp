#include "test_ca.hpp"

#include "digest.hpp"
#include "gateway.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace aqt {

namespace {

void openssl(const std::vector<std::string>& args) {
    const command_result r = run_program("openssl", args);
    if (!r.status.success()) throw std::runtime_error("openssl " + args.front() + " failed: " + r.output);
}

}  // namespace

test_ca::test_ca() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/aqt-ca-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ca_file_ = dir_ / "ca.pem";
    ca_key_ = dir_ / "ca.key";
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             ca_key_.string(), "-out", ca_file_.string(), "-days", "2", "-subj", "/CN=aqueduct test CA"});
}

test_ca::~test_ca() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

test_ca::issued test_ca::issue(const std::string& name, const std::string& common_name) {
    issued out{dir_ / (name + ".pem"), dir_ / (name + ".key"), {}};
    const fs::path request = dir_ / (name + ".csr"), extensions = dir_ / (name + ".ext");
    std::ofstream(extensions) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                 "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", out.key.string(),
             "-out", request.string(), "-subj", "/CN=" + common_name});
    openssl({"x509", "-req", "-in", request.string(), "-CA", ca_file_.string(), "-CAkey", ca_key_.string(),
             "-set_serial", "0x1" + random_hex(7), "-out", out.cert.string(), "-days", "2", "-extfile",
             extensions.string()});
    const command_result serial = run_program("openssl", {"x509", "-noout", "-serial", "-in", out.cert.string()});
    // "serial=1A2B...\n"
    const auto eq = serial.output.find('=');
    if (!serial.status.success() || eq == std::string::npos) throw std::runtime_error("openssl x509 -serial: " + serial.output);
    out.serial = serial.output.substr(eq + 1);
    while (!out.serial.empty() && (out.serial.back() == '\n' || out.serial.back() == '\r')) out.serial.pop_back();
    return out;
}

}  // namespace aqt
