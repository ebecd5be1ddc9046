// The purge job: removes expired files, abandoned writes and failed removals (store.hpp: rows
// whose expires_at passed, whatever their state) in bounded batches, content first, then rows;
// and aborts S3 multipart uploads no live writer holds. Parts of Uploads are rows of files
// (uploads.hpp), removed the same way; Upload rows a day past their expiry go too.
//
// Visibility never depends on it (every query filters state and expires_at); it only reclaims
// space. Each batch is claimed in its own short transaction of at most expiry_batch_size rows,
// so a purge never holds locks for long; on PostgreSQL, hosts running it at once skip each
// other's rows.
#pragma once

#include "config.hpp"
#include "metrics.hpp"
#include "store.hpp"
#include "uploads.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

void register_expiry(aq::host& host, const config& cfg, store& files, uploads& ups, const files_metrics& metrics);

}  // namespace aq::files
