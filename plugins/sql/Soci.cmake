# SOCI ships neither a CMake config nor a pkg-config file in Debian: find it by hand.
find_path(SOCI_INCLUDE_DIR soci/soci.h REQUIRED)
find_library(SOCI_CORE_LIBRARY soci_core REQUIRED)
find_library(SOCI_SQLITE3_LIBRARY soci_sqlite3 REQUIRED)
find_library(SOCI_POSTGRESQL_LIBRARY soci_postgresql REQUIRED)

add_library(SOCI::core UNKNOWN IMPORTED)
set_target_properties(SOCI::core PROPERTIES IMPORTED_LOCATION ${SOCI_CORE_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${SOCI_INCLUDE_DIR})
add_library(SOCI::sqlite3 UNKNOWN IMPORTED)
set_target_properties(SOCI::sqlite3 PROPERTIES IMPORTED_LOCATION ${SOCI_SQLITE3_LIBRARY}
  INTERFACE_LINK_LIBRARIES "SOCI::core;SQLite::SQLite3")
add_library(SOCI::postgresql UNKNOWN IMPORTED)
set_target_properties(SOCI::postgresql PROPERTIES IMPORTED_LOCATION ${SOCI_POSTGRESQL_LIBRARY}
  INTERFACE_LINK_LIBRARIES "SOCI::core;PostgreSQL::PostgreSQL")

# SOCI's shared libraries do not export their classes' typeinfo, which UBSan's vptr check needs
# for casts in SOCI's inline code (and in bytea.cpp): in a sanitizer build (cmake/Sanitizers.cmake)
# what uses SOCI is compiled without that one check, or it would not link.
if(AQUEDUCT_SANITIZE)
  set_property(TARGET SOCI::core APPEND PROPERTY INTERFACE_COMPILE_OPTIONS -fno-sanitize=vptr)
endif()
