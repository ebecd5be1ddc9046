# find_package(AqueductSDK) for out-of-tree plugins: the Aqueduct::sdk target and
# aqueduct_add_plugin().
include(CMakeFindDependencyMacro)
find_dependency(Boost 1.81 CONFIG COMPONENTS json)
include(${CMAKE_CURRENT_LIST_DIR}/AqueductSDKTargets.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/AqueductPlugin.cmake)
