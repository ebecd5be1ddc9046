#define BOOST_TEST_MODULE loader
#include <boost/test/unit_test.hpp>

#include "loader.hpp"

#include <filesystem>
#include <fstream>
#include <string>

#include <stdlib.h>

using aqd::load_error;
using aqd::load_plugin;

namespace {

const std::filesystem::path dir = AQ_LOADER_PLUGIN_DIR;

std::string lib(const std::string& name) { return (dir / ("lib" + name + ".so")).string(); }

std::string load_error_of(const std::filesystem::path& from, const std::string& name) {
    try {
        load_plugin(from, name);
    } catch (const load_error& e) {
        return e.what();
    }
    return "<no error>";
}

std::string load_error_of(const std::string& name) { return load_error_of(dir, name); }

}  // namespace

BOOST_AUTO_TEST_CASE(plugin_path_is_lib_name_so_in_the_dir) {
    BOOST_TEST(aqd::plugin_path("/opt/aq/plugins", "files") == "/opt/aq/plugins/libfiles.so");
}

BOOST_AUTO_TEST_CASE(valid_plugin_loads_with_its_descriptor) {
    const aqd::loaded_plugin p = load_plugin(dir, "ok");
    BOOST_TEST(p.name == "ok");
    BOOST_TEST(p.path == dir / "libok.so");
    BOOST_REQUIRE(p.descriptor != nullptr);
    BOOST_TEST(p.descriptor->abi_major == static_cast<std::uint32_t>(AQ_ABI_MAJOR));
    BOOST_TEST(std::string(p.descriptor->version.data, p.descriptor->version.len) == "1.2.3");
    BOOST_TEST(p.descriptor->init != nullptr);
}

BOOST_AUTO_TEST_CASE(loading_twice_gives_the_same_descriptor) {
    BOOST_TEST(load_plugin(dir, "ok").descriptor == load_plugin(dir, "ok").descriptor);
}

BOOST_AUTO_TEST_CASE(missing_file_is_named) {
    BOOST_TEST(load_error_of("files") == "plugin files: no library at " + lib("files"));
}

BOOST_AUTO_TEST_CASE(file_that_is_not_a_library_reports_the_dl_error) {
    char tmpl[] = "/tmp/aq-loader-test-XXXXXX";
    const char* tmp = mkdtemp(tmpl);
    BOOST_REQUIRE(tmp != nullptr);
    std::ofstream(std::filesystem::path(tmp) / "libjunk.so") << "not an ELF file\n";
    const std::string path = std::string(tmp) + "/libjunk.so";
    const std::string msg = load_error_of(tmp, "junk");
    std::filesystem::remove_all(tmp);
    const std::string prefix = "plugin junk (" + path + "): cannot load: ";
    BOOST_TEST(msg.starts_with(prefix), msg);
    BOOST_TEST(msg.find(path) != msg.rfind(path), "the dl error is included: " << msg);
}

BOOST_AUTO_TEST_CASE(unresolved_symbol_fails_at_load_time) {
    const std::string msg = load_error_of("unresolved");
    BOOST_TEST(msg.starts_with("plugin unresolved (" + lib("unresolved") + "): cannot load: "), msg);
    BOOST_TEST(msg.find("aq_test_function_nobody_defines") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(missing_entry_symbol_is_refused) {
    BOOST_TEST(load_error_of("no_entry") ==
               "plugin no_entry (" + lib("no_entry") + "): missing entry symbol aq_plugin_entry_v1");
}

BOOST_AUTO_TEST_CASE(null_descriptor_is_refused) {
    BOOST_TEST(load_error_of("null_descriptor") ==
               "plugin null_descriptor (" + lib("null_descriptor") + "): aq_plugin_entry_v1() returned NULL");
}

BOOST_AUTO_TEST_CASE(abi_major_mismatch_names_both_versions) {
    BOOST_TEST(load_error_of("major_2") == "plugin major_2 (" + lib("major_2") + "): abi_major is 2, host supports 1");
}

BOOST_AUTO_TEST_CASE(newer_abi_minor_names_both_versions) {
    BOOST_TEST(load_error_of("minor_7") ==
               "plugin minor_7 (" + lib("minor_7") + "): abi_minor is 7, host supports up to " + std::to_string(AQ_ABI_MINOR));
}

BOOST_AUTO_TEST_CASE(struct_too_small_for_the_version_fields_is_refused) {
    BOOST_TEST(load_error_of("tiny_struct") == "plugin tiny_struct (" + lib("tiny_struct") + "): struct_size is " +
                                                   std::to_string(sizeof(size_t)) + ", smaller than any ABI version");
}

BOOST_AUTO_TEST_CASE(struct_without_init_and_shutdown_is_refused) {
    BOOST_TEST(load_error_of("small_struct") ==
               "plugin small_struct (" + lib("small_struct") + "): struct_size is " +
                   std::to_string(offsetof(aq_plugin, init)) + ", ABI 1." + std::to_string(AQ_ABI_MINOR) + " needs at least " +
                   std::to_string(sizeof(aq_plugin)));
}

BOOST_AUTO_TEST_CASE(null_init_is_refused) {
    BOOST_TEST(load_error_of("null_init") == "plugin null_init (" + lib("null_init") + "): init is NULL");
}
