# aqueduct_add_plugin(NAME SOURCES...)
#
# Builds a plugin the way the host expects it: a MODULE library named lib<NAME>.so, hidden
# visibility, only aq_plugin_entry_v1 exported (linker version script) and no undefined symbols,
# so a missing dependency fails at link time instead of at load time.
set(AQUEDUCT_PLUGIN_VERSION_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/plugin.version)

function(aqueduct_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET Aqueduct::sdk)
    target_link_libraries(${name} PRIVATE Aqueduct::sdk)
  endif()
  target_link_options(${name} PRIVATE "LINKER:--version-script=${AQUEDUCT_PLUGIN_VERSION_SCRIPT}")
  # In a sanitizer build (cmake/Sanitizers.cmake) clang links the sanitizer runtime into the
  # executable only, so a plugin's __asan_*/__ubsan_* references resolve at load time; the normal
  # build keeps the check.
  if(NOT AQUEDUCT_SANITIZE)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
endfunction()
