#define BOOST_TEST_MODULE services
#include <boost/test/unit_test.hpp>

#include "plugin_order.hpp"
#include "service_registry.hpp"

using aqd::plugin_config;
using aqd::plugin_order;
using aqd::plugin_order_error;
using names = std::vector<std::string>;

namespace {

plugin_config plugin(std::string name, names requires_ = {}, bool enabled = true) {
    plugin_config p;
    p.name = std::move(name);
    p.enabled = enabled;
    p.requires_ = std::move(requires_);
    return p;
}

std::string order_error(const std::vector<plugin_config>& plugins) {
    try {
        plugin_order(plugins);
    } catch (const plugin_order_error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

// ---- plugin order ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(independent_plugins_keep_file_order) {
    BOOST_TEST(plugin_order({plugin("c"), plugin("a"), plugin("b")}) == (names{"c", "a", "b"}));
}

BOOST_AUTO_TEST_CASE(required_plugin_comes_first_even_when_listed_later) {
    BOOST_TEST(plugin_order({plugin("batches", {"files"}), plugin("files")}) == (names{"files", "batches"}));
}

BOOST_AUTO_TEST_CASE(ready_plugins_are_taken_in_file_order) {
    // d needs b; a and c are free. File order decides among the ready ones at every step.
    BOOST_TEST(plugin_order({plugin("d", {"b"}), plugin("a"), plugin("b"), plugin("c")}) ==
               (names{"a", "b", "d", "c"}));
}

BOOST_AUTO_TEST_CASE(chain_is_ordered_by_dependency) {
    BOOST_TEST(plugin_order({plugin("c", {"b"}), plugin("b", {"a"}), plugin("a")}) == (names{"a", "b", "c"}));
}

BOOST_AUTO_TEST_CASE(disabled_plugins_are_left_out) {
    BOOST_TEST(plugin_order({plugin("a"), plugin("b", {}, false), plugin("c")}) == (names{"a", "c"}));
    BOOST_TEST(plugin_order({}).empty());
}

BOOST_AUTO_TEST_CASE(requirement_on_a_disabled_plugin_is_refused) {
    BOOST_TEST(order_error({plugin("files", {}, false), plugin("batches", {"files"})}) ==
               "plugin batches requires files, which is not enabled");
}

BOOST_AUTO_TEST_CASE(requirement_on_an_unknown_plugin_is_refused) {
    BOOST_TEST(order_error({plugin("batches", {"files"})}) == "plugin batches requires files, which is not enabled");
}

BOOST_AUTO_TEST_CASE(disabled_plugin_with_missing_requirement_is_ignored) {
    BOOST_TEST(plugin_order({plugin("batches", {"files"}, false), plugin("a")}) == (names{"a"}));
}

BOOST_AUTO_TEST_CASE(two_plugin_cycle_is_named) {
    BOOST_TEST(order_error({plugin("a", {"b"}), plugin("b", {"a"})}) == "plugin cycle: a -> b -> a");
}

BOOST_AUTO_TEST_CASE(self_requirement_is_a_cycle) {
    BOOST_TEST(order_error({plugin("a", {"a"})}) == "plugin cycle: a -> a");
}

BOOST_AUTO_TEST_CASE(cycle_message_leaves_out_the_path_leading_into_it) {
    // x waits for the cycle b -> c -> b but is not part of it.
    BOOST_TEST(order_error({plugin("ok"), plugin("x", {"b"}), plugin("b", {"c"}), plugin("c", {"b"})}) ==
               "plugin cycle: b -> c -> b");
}

// ---- service registry -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(published_table_is_found_by_name_and_version) {
    aqd::service_registry reg;
    const int v1 = 1, v2 = 2;
    BOOST_TEST(reg.add("files", 1, &v1, "files"));
    BOOST_TEST(reg.add("files", 2, &v2, "files"));
    BOOST_TEST(reg.find("files", 1) == &v1);
    BOOST_TEST(reg.find("files", 2) == &v2);
    BOOST_TEST(reg.find("files", 3) == nullptr);
    BOOST_TEST(reg.find("file", 1) == nullptr);
}

BOOST_AUTO_TEST_CASE(second_publication_of_same_version_is_refused_and_first_kept) {
    aqd::service_registry reg;
    const int first = 1, second = 2;
    BOOST_TEST(reg.add("files", 1, &first, "files"));
    BOOST_TEST(!reg.add("files", 1, &second, "impostor"));
    BOOST_TEST(reg.find("files", 1) == &first);
    BOOST_TEST(reg.provider("files") == "files");
}

BOOST_AUTO_TEST_CASE(provider_is_found_for_any_version_and_empty_when_absent) {
    aqd::service_registry reg;
    const int t = 0;
    BOOST_TEST(reg.provider("files") == "");
    reg.add("files", 7, &t, "files-plugin");
    reg.add("filesx", 1, &t, "other");
    BOOST_TEST(reg.provider("files") == "files-plugin");
    BOOST_TEST(reg.provider("filesx") == "other");
    BOOST_TEST(reg.provider("file") == "");
    BOOST_TEST(reg.provider("g") == "");
}
