// Named points where the files plugin can be made to stop for a while, for tests only.
//
// Crash and outage tests need something in flight at an exact step (an upload whose content is
// half in the store, a commit between its content and its row) and cannot get there reliably
// by timing. With the environment variable
//
//   AQ_FILES_TEST_PAUSE=<point>:<milliseconds>[@<n>][,<point>:<milliseconds>[@<n>]...]
//
// the thread that reaches <point> (its n-th arrival and every later one; n = 1 by default) logs
// "files: test pause at <point>" and sleeps that long, then carries on; a test waits for the log
// line and then stops the database or kills the process.
// Compiled into every build so the tests exercise the binary that ships; never set it in
// production (it only ever slows things down, and nothing else reads it). The points are listed
// where they are called (pause_point(...)).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace aq::files {

// Reads AQ_FILES_TEST_PAUSE once; `log` receives the line each pause announces. Called at init.
void configure_test_pauses(std::function<void(const std::string&)> log);

// Sleeps if AQ_FILES_TEST_PAUSE names `point`; otherwise returns at once (one map lookup only
// when the variable is set, nothing at all when it is not).
void pause_point(std::string_view point);

}  // namespace aq::files
