// The SDK is enough to build a plugin: install it with `cmake --install`, build
// tests/fixtures/out_of_tree against the installed package alone, load the result in the host.
#define BOOST_TEST_MODULE out_of_tree_sdk
#include <boost/test/unit_test.hpp>

#include "aqt_build_paths.h"
#include "support/gateway.hpp"
#include "support/http_client.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "aqt-sdk-XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// Runs a shell command, output into `log`; returns its exit status.
int run(const std::string& command, const fs::path& log) {
    return std::system((command + " >>" + log.string() + " 2>&1").c_str());
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(plugin_built_against_the_installed_sdk_loads_and_serves) {
    temp_dir tmp;
    fs::path prefix = tmp.path / "prefix", build = tmp.path / "build", log = tmp.path / "build.log";
    BOOST_TEST_REQUIRE(run("cmake --install '" AQ_TEST_BINARY_DIR "' --prefix '" + prefix.string() + "'", log) == 0,
                       read(log));
    BOOST_TEST_REQUIRE(fs::exists(prefix / "include/aqueduct/abi.h"));
    // Only the install prefix is visible: the source tree is not on any path.
    BOOST_TEST_REQUIRE(run("cmake -S '" AQ_TEST_SOURCE_DIR "/tests/fixtures/out_of_tree' -B '" + build.string() +
                               "' -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH='" + prefix.string() + "'",
                           log) == 0,
                       read(log));
    BOOST_TEST_REQUIRE(run("cmake --build '" + build.string() + "'", log) == 0, read(log));
    fs::path library = build / "libhello.so";
    BOOST_TEST_REQUIRE(fs::exists(library), read(log));

    // Exactly one exported function: the entry symbol.
    fs::path symbols = tmp.path / "symbols.txt";
    BOOST_TEST_REQUIRE(std::system(("nm -D --defined-only '" + library.string() + "' | awk '$2 == \"T\" {print $3}' >'" +
                                    symbols.string() + "'").c_str()) == 0);
    BOOST_TEST(read(symbols) == "aq_plugin_entry_v1\n");

    aqt::gateway_options o;
    o.config = {{"plugins", {{"hello", {{"enabled", true}, {"greeting", "bonjour"}}}}}};
    o.extra_plugins = {library};
    aqt::gateway gw(o);
    aqt::http::client c(gw.port());
    auto r = c.get("/v1/hello", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json() == json::parse(R"({"greeting":"bonjour","user":"alice"})"));
}
