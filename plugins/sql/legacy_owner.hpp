// How an owner stored before owner keys carried their kind becomes an owner key; the one rule
// that the files and the batches migrations both apply.
//
// Until schema version 2 (files) an owner was a bare name: the team's name for a team token, else
// the user's. A team and a user with the same name therefore shared everything. Owner keys now
// say which one they are ("user:NAME", "team:NAME", aq::owner_key), but a bare name in an old row
// cannot tell: the tokens that wrote it may be gone, and the plugins never see the token list.
//
// The rule: a bare name the operator lists in the plugin's `legacy_team_owners` becomes
// "team:NAME"; every other bare name becomes "user:NAME". Why this never widens access: before
// the migration a row owned by NAME was reachable by user NAME's tokens and by team NAME's
// tokens alike; after it, by exactly one of the two. A team the operator forgot to list loses
// access to its old objects (they move to user NAME, who could already read them) and can be
// given them back with one UPDATE (README); nobody gains access they did not have before. Give
// files and batches the same list, or a team's batches and their output files end up under
// different keys.
#pragma once

#include <boost/json/value.hpp>

#include <soci/session.h>

#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace aq::sql {

using name_set = std::set<std::string, std::less<>>;

// The owner key of a row whose owner column held `bare` before owner keys existed.
std::string legacy_owner_key(std::string_view bare, const name_set& legacy_teams);

// What a rewrite did: how many distinct bare names became user keys and team keys.
struct owner_rewrite {
    std::size_t users = 0;
    std::size_t teams = 0;
};

// Rewrites every value of `table`.`column` with legacy_owner_key, in the session's current
// transaction (run it as a migration step). Each row is rewritten exactly once, from its old
// value, even when a bare name looks like a key ("user:x" becomes "user:user:x").
owner_rewrite rewrite_legacy_owners(soci::session& session, std::string_view table, std::string_view column,
                                    const name_set& legacy_teams);

// Parses a `legacy_team_owners` config value: an array of non-empty strings. Throws
// std::invalid_argument with the reason (the caller prefixes the key's path).
name_set legacy_team_owners_from(const boost::json::value& v);

}  // namespace aq::sql
