# Runs at install time (install(SCRIPT) in cmake/Packaging.cmake), because the installed config
# and systemd unit name absolute paths that depend on the prefix given then: `cmake --install
# build --prefix P` writes P/etc/aqueduct/aqueduct.json and keeps the state in P/var/lib/aqueduct;
# the .deb (prefix /usr) uses /etc/aqueduct and /var/lib/aqueduct, as GNUInstallDirs does for
# /usr. An existing config is never overwritten (it is the operator's; dpkg has conffiles).
# Inputs: AQ_PACKAGING_DIR (this directory), AQ_LIBDIR, AQ_BINDIR, AQ_DOCDIR (relative).
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(AQ_ETC_DIR "/etc/aqueduct")
  set(AQ_STATE_DIR "/var/lib/aqueduct")
else()
  set(AQ_ETC_DIR "${prefix}/etc/aqueduct")
  set(AQ_STATE_DIR "${prefix}/var/lib/aqueduct")
endif()
set(AQ_BIN_DIR "${prefix}/${AQ_BINDIR}")
set(AQ_PLUGIN_DIR "${prefix}/${AQ_LIBDIR}/aqueduct/plugins")
set(AQ_DOC_DIR "${prefix}/${AQ_DOCDIR}")

set(config "$ENV{DESTDIR}${AQ_ETC_DIR}/aqueduct.json")
if(EXISTS "${config}")
  message(STATUS "Kept (exists): ${config}")
else()
  message(STATUS "Installing: ${config}")
  configure_file("${AQ_PACKAGING_DIR}/aqueduct.json.in" "${config}" @ONLY)
endif()
set(unit "$ENV{DESTDIR}${prefix}/lib/systemd/system/aqueductd.service")
message(STATUS "Installing: ${unit}")
configure_file("${AQ_PACKAGING_DIR}/aqueductd.service.in" "${unit}" @ONLY)
file(MAKE_DIRECTORY "$ENV{DESTDIR}${AQ_STATE_DIR}")
