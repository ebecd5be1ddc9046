# Install layout and the Debian package (issue 10, item 8).
#
# `cmake --install build --prefix P` lays out P/bin/aqueductd, P/lib/aqueduct/plugins/, the SDK
# (P/include/aqueduct, P/lib/cmake/AqueductSDK), P/share/doc/aqueduct, P/etc/aqueduct/aqueduct.json
# and P/lib/systemd/system/aqueductd.service (packaging/install_layout.cmake).
#
# `cpack --config build/CPackConfig.cmake` builds aqueduct_<version>_<arch>.deb: prefix /usr,
# config in /etc/aqueduct (a conffile), runtime dependencies found by dpkg-shlibdeps from the
# binaries (libssl3, libpq5, libsqlite3-0, libsoci-*, libboost-json...) plus adduser for the
# maintainer scripts, which create the system user aqueduct and /var/lib/aqueduct
# (packaging/postinst). tests/package/deb_test.sh builds it, extracts it and starts it.
include(GNUInstallDirs)

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES etc/aqueduct.postgres.json DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(CODE "
  set(AQ_PACKAGING_DIR \"${CMAKE_CURRENT_SOURCE_DIR}/packaging\")
  set(AQ_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(AQ_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(AQ_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")")
install(SCRIPT packaging/install_layout.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME aqueduct)
set(CPACK_PACKAGE_VENDOR "aqueduct")
set(CPACK_PACKAGE_CONTACT "aqueduct maintainers <maintainers@aqueduct.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OpenAI-compatible Files and Batch API gateway")
set(CPACK_PACKAGE_DESCRIPTION "aqueductd serves the OpenAI Files and Batch APIs in front of OpenAI-compatible
 upstreams, with plugins loaded through a stable C ABI; metrics, access log, TLS, reload on SIGHUP.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # the prefix CPack installs with when CPACK_SET_DESTDIR is on
# Install with DESTDIR and the real prefix, so the absolute /etc and /var paths of
# install_layout.cmake land in the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/postrm
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
