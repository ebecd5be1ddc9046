/*
 * Service "files", version 1: stored files for other plugins.
 *
 * Published by the files plugin with register_service("files", 1, &table); a consumer (the
 * batches plugin) asks for it with get_service("files", 1) and lists "files" in its `requires`.
 * Same rules as abi.h: struct_size first, append-only, views never NUL-terminated, no exception
 * crosses. Every function may be called from any thread; one reader or writer is used by one
 * thread at a time. Ownership is enforced here too: a file of another owner is AQ_ERR_NOT_FOUND,
 * exactly like a missing one, and an expired file is missing.
 */
#ifndef AQUEDUCT_SERVICES_FILES_H
#define AQUEDUCT_SERVICES_FILES_H

#include "aqueduct/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQ_FILES_SERVICE_NAME "files"
#define AQ_FILES_SERVICE_VERSION 1

typedef struct aq_files_reader aq_files_reader;
typedef struct aq_files_writer aq_files_writer;

/* A stored file's metadata. The views live as long as the reader or writer they came from. */
typedef struct aq_file_info {
    size_t struct_size;
    aq_str id;
    aq_str owner;
    aq_str filename;
    aq_str purpose;
    aq_str sha256;          /* lowercase hex of the content */
    uint64_t bytes;
    int64_t created_at;     /* Unix seconds */
    int64_t expires_at;     /* Unix seconds; 0 when the file never expires */
} aq_file_info;

/* What a new file is. Strings are copied during create(). */
typedef struct aq_file_create {
    size_t struct_size;
    aq_str owner;
    aq_str filename;
    aq_str purpose;                 /* "batch_output" for batch results */
    int64_t expires_after_seconds;  /* 0: the files plugin's default expiry */
} aq_file_create;

typedef struct aq_files_v1 {
    size_t struct_size;
    void* ctx;              /* the provider's state; pass it to open and create */

    /* Opens a file for streaming reads. AQ_ERR_NOT_FOUND for a missing, expired or foreign id;
     * AQ_ERR_UNAVAILABLE when the store cannot be reached. Opening reads metadata only, so
     * open + reader_info + close_reader is how a consumer reads metadata. */
    aq_status (*open)(void* ctx, aq_str file_id, aq_str owner, aq_files_reader** reader);
    /* Metadata of the opened file; valid until close_reader. */
    const aq_file_info* (*reader_info)(aq_files_reader* reader);
    /* Copies the next bytes of content into buf: > 0 bytes, 0 at the end, or the negated
     * aq_status (-AQ_ERR_NOT_FOUND if the file was deleted meanwhile). */
    int64_t (*read)(aq_files_reader* reader, void* buf, size_t cap);
    void (*close_reader)(aq_files_reader* reader);

    /* Starts a new file. Content written before commit is invisible to everyone; a writer that
     * is closed without commit leaves nothing behind. */
    aq_status (*create)(void* ctx, const aq_file_create* params, aq_files_writer** writer);
    /* Appends content; chunks of any size (the store re-chunks them). AQ_ERR_LIMIT past the
     * provider's maximum size for files it is given this way (the files plugin's
     * max_output_file_bytes, which may exceed its upload limit). After a refused or failed
     * write the file is spoilt: later writes and commit return the same status. Owner quotas
     * never refuse a write or commit here: the file then counts toward its owner's quota. */
    aq_status (*write)(aq_files_writer* writer, aq_str chunk);
    /* Makes the file visible. *info (may be NULL) stays valid until close_writer. */
    aq_status (*commit)(aq_files_writer* writer, const aq_file_info** info);
    /* Frees the writer; aborts it first when it was not committed. */
    void (*close_writer)(aq_files_writer* writer);

    /* Added after 1.0 (check AQ_HAS_FIELD): deletes a file, as DELETE /v1/files/{id} would.
     * AQ_ERR_NOT_FOUND for a missing, expired or foreign id. The batches plugin deletes a result
     * file it committed after losing the batch's lease to another host (fencing). */
    aq_status (*remove)(void* ctx, aq_str file_id, aq_str owner);
} aq_files_v1;

#ifdef __cplusplus
}
#endif

#endif /* AQUEDUCT_SERVICES_FILES_H */
