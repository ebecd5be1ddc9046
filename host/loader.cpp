#include "loader.hpp"

#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <cstddef>
#include <system_error>

namespace aqd {

std::filesystem::path plugin_path(const std::filesystem::path& dir, const std::string& name) {
    return dir / ("lib" + name + ".so");
}

loaded_plugin load_plugin(const std::filesystem::path& dir, const std::string& name) {
    const std::filesystem::path path = plugin_path(dir, name);
    const std::string who = "plugin " + name + " (" + path.string() + "): ";

    std::error_code exists_ec;
    if (!std::filesystem::is_regular_file(path, exists_ec))
        throw load_error("plugin " + name + ": no library at " + path.string());

    // Never unloaded, on purpose (as PostgreSQL and SQLite do): code of the plugin may still be
    // on some stack, in a thread it started or an atexit handler, until the process exits. The
    // object is leaked so its destructor never calls dlclose().
    auto* library = new boost::dll::shared_library();
    std::error_code ec;
    // RTLD_NOW: an unresolved symbol fails here, with a message, not later in a request.
    // RTLD_LOCAL: two plugins' symbols never bind to each other.
    dlerror();  // clear a stale message so the one below is ours
    library->load(path, ec, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    if (ec) {
        const char* dl = dlerror();
        delete library;  // nothing was loaded, so nothing to keep alive
        throw load_error(who + "cannot load: " + (dl ? dl : ec.message()));
    }

    if (!library->has(AQ_PLUGIN_ENTRY_SYMBOL))
        throw load_error(who + "missing entry symbol " AQ_PLUGIN_ENTRY_SYMBOL);
    const auto entry = library->get<const aq_plugin*()>(AQ_PLUGIN_ENTRY_SYMBOL);

    const aq_plugin* d = entry();
    if (!d) throw load_error(who + AQ_PLUGIN_ENTRY_SYMBOL "() returned NULL");

    // The version fields are checked before anything else is read: every later field's meaning
    // depends on them. struct_size first, so that reading abi_major is itself safe.
    constexpr std::size_t version_end = offsetof(aq_plugin, abi_minor) + sizeof(d->abi_minor);
    if (d->struct_size < version_end)
        throw load_error(who + "struct_size is " + std::to_string(d->struct_size) + ", smaller than any ABI version");
    if (d->abi_major != AQ_ABI_MAJOR)
        throw load_error(who + "abi_major is " + std::to_string(d->abi_major) + ", host supports " +
                         std::to_string(AQ_ABI_MAJOR));
    if (d->abi_minor > AQ_ABI_MINOR)
        throw load_error(who + "abi_minor is " + std::to_string(d->abi_minor) + ", host supports up to " +
                         std::to_string(AQ_ABI_MINOR));
    if (!AQ_HAS_FIELD(d, aq_plugin, shutdown))
        throw load_error(who + "struct_size is " + std::to_string(d->struct_size) + ", ABI " +
                         std::to_string(AQ_ABI_MAJOR) + "." + std::to_string(d->abi_minor) + " needs at least " +
                         std::to_string(sizeof(aq_plugin)));
    if (!d->init) throw load_error(who + "init is NULL");

    return loaded_plugin{name, path, d};
}

}  // namespace aqd
