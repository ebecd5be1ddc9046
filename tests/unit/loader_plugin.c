/* One tiny plugin per loader check, built once per variant (LOADER_VARIANT_*), so each test
 * breaks exactly one rule of the descriptor. */
#include "aqueduct/abi.h"

/* Unused by the variants that never reach a descriptor. */
__attribute__((unused)) static aq_status init(const aq_host_api* api, void** ctx) {
    (void)api;
    (void)ctx;
    return AQ_OK;
}

#define NAME {"loader-test", 11}
#define VERSION {"1.2.3", 5}

#if defined(LOADER_VARIANT_no_entry)
AQ_EXPORT const aq_plugin* aq_plugin_entry_v0(void) {
    return 0;
}
#elif defined(LOADER_VARIANT_unresolved)
extern int aq_test_function_nobody_defines(void);
static aq_plugin descriptor = {sizeof(aq_plugin), AQ_ABI_MAJOR, AQ_ABI_MINOR, NAME, VERSION, init, 0};
AQ_EXPORT const aq_plugin* aq_plugin_entry_v1(void) {
    return aq_test_function_nobody_defines() ? &descriptor : 0;
}
#else
#if defined(LOADER_VARIANT_null_descriptor)
#elif defined(LOADER_VARIANT_ok)
static const aq_plugin descriptor = {sizeof(aq_plugin), AQ_ABI_MAJOR, AQ_ABI_MINOR, NAME, VERSION, init, 0};
#elif defined(LOADER_VARIANT_small_struct)
static const aq_plugin descriptor = {offsetof(aq_plugin, init), AQ_ABI_MAJOR, AQ_ABI_MINOR, NAME, VERSION, init, 0};
#elif defined(LOADER_VARIANT_tiny_struct)
static const aq_plugin descriptor = {sizeof(size_t), AQ_ABI_MAJOR, AQ_ABI_MINOR, NAME, VERSION, init, 0};
#elif defined(LOADER_VARIANT_major_2)
static const aq_plugin descriptor = {sizeof(aq_plugin), 2, 0, NAME, VERSION, init, 0};
#elif defined(LOADER_VARIANT_minor_7)
static const aq_plugin descriptor = {sizeof(aq_plugin), AQ_ABI_MAJOR, 7, NAME, VERSION, init, 0};
#elif defined(LOADER_VARIANT_null_init)
static const aq_plugin descriptor = {sizeof(aq_plugin), AQ_ABI_MAJOR, AQ_ABI_MINOR, NAME, VERSION, 0, 0};
#endif

AQ_EXPORT const aq_plugin* aq_plugin_entry_v1(void) {
#if defined(LOADER_VARIANT_null_descriptor)
    return 0;
#else
    return &descriptor;
#endif
}
#endif
