#include "sql/legacy_owner.hpp"

#include <aqueduct/plugin.hpp>

#include <soci/soci.h>

#include <stdexcept>
#include <vector>

namespace aq::sql {

std::string legacy_owner_key(std::string_view bare, const name_set& legacy_teams) {
    return aq::owner_key(legacy_teams.contains(bare) ? aq::owner_kind::team : aq::owner_kind::user, bare);
}

owner_rewrite rewrite_legacy_owners(soci::session& session, std::string_view table, std::string_view column,
                                    const name_set& legacy_teams) {
    const std::string t(table), c(column);
    std::vector<std::string> bare;
    {
        std::string name;
        soci::statement st = (session.prepare << "select distinct " + c + " from " + t, soci::into(name));
        st.execute();
        while (st.fetch()) bare.push_back(name);
    }
    owner_rewrite done;
    if (bare.empty()) return done;
    // One UPDATE from a mapping table: renaming name by name would rename a row twice when one
    // bare name equals another's new key.
    session << "drop table if exists aq_owner_map";
    session << "create temporary table aq_owner_map (old text primary key, new text not null)";
    for (const std::string& old : bare) {
        std::string key = legacy_owner_key(old, legacy_teams);
        (key.starts_with("team:") ? done.teams : done.users) += 1;
        session << "insert into aq_owner_map (old, new) values (:o, :n)", soci::use(old), soci::use(key);
    }
    session << "update " + t + " set " + c + " = (select m.new from aq_owner_map m where m.old = " + t + "." + c + ")";
    session << "drop table aq_owner_map";
    return done;
}

name_set legacy_team_owners_from(const boost::json::value& v) {
    if (!v.is_array()) throw std::invalid_argument("must be an array of team names");
    name_set names;
    for (const auto& n : v.as_array()) {
        if (!n.is_string() || n.as_string().empty()) throw std::invalid_argument("must be an array of non-empty strings");
        names.emplace(n.as_string());
    }
    return names;
}

}  // namespace aq::sql
