# Install rules: public headers, the libraries, the CMake package (sessionctxConfig.cmake
# with components memory, rocksdb, postgres, redis, http, jwt, metrics, stores) and sessionctx.pc.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sessionctx
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/sessionctx/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sessionctx)
install(TARGETS ${SESSIONCTX_TARGETS} EXPORT sessionctxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(SESSIONCTX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sessionctx)
install(EXPORT sessionctxTargets NAMESPACE sessionctx:: DESTINATION ${SESSIONCTX_CMAKE_DIR})

# What the package holds, for the config file's component checks.
set(SESSIONCTX_PACKAGE_COMPONENTS core memory stores)
foreach(c rocksdb postgres redis http metrics)
  string(TOUPPER ${c} C)
  if(SESSIONCTX_WITH_${C})
    list(APPEND SESSIONCTX_PACKAGE_COMPONENTS ${c})
  endif()
endforeach()
if(SESSIONCTX_WITH_HTTP)
  list(APPEND SESSIONCTX_PACKAGE_COMPONENTS jwt)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sessionctxConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sessionctxConfig.cmake INSTALL_DESTINATION ${SESSIONCTX_CMAKE_DIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sessionctxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sessionctxConfig.cmake
              ${PROJECT_BINARY_DIR}/sessionctxConfigVersion.cmake
        DESTINATION ${SESSIONCTX_CMAKE_DIR})

# pkg-config: one file for everything built. The libraries are static, so their
# dependencies are public requirements (each is a shared library on Debian).
set(SESSIONCTX_PC_LIBS "-lsessionctx_stores")
set(SESSIONCTX_PC_REQUIRES "absl_status absl_statusor absl_strings absl_time absl_synchronization absl_flat_hash_map absl_hash nlohmann_json")
set(SESSIONCTX_PC_PRIVATE_LIBS "")
if(SESSIONCTX_WITH_POSTGRES)
  string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_postgres")
  string(APPEND SESSIONCTX_PC_REQUIRES " libpqxx libpq")
endif()
if(SESSIONCTX_WITH_REDIS)
  string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_redis")
  string(APPEND SESSIONCTX_PC_REQUIRES " hiredis")
endif()
if(SESSIONCTX_WITH_ROCKSDB)
  string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_rocksdb")
  string(APPEND SESSIONCTX_PC_REQUIRES " rocksdb")
endif()
string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_memory")
if(SESSIONCTX_WITH_HTTP)
  string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_jwt -lsessionctx_http")
  string(APPEND SESSIONCTX_PC_REQUIRES " libcrypto")
endif()
if(SESSIONCTX_WITH_METRICS)
  string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_metrics")
  string(APPEND SESSIONCTX_PC_REQUIRES " prometheus-cpp-core")
endif()
string(APPEND SESSIONCTX_PC_LIBS " -lsessionctx_core")
# Relocatable: paths are relative to where the .pc file is installed.
file(RELATIVE_PATH SESSIONCTX_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" SESSIONCTX_PC_TO_PREFIX "${SESSIONCTX_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/sessionctx.pc.in ${PROJECT_BINARY_DIR}/sessionctx.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sessionctx.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
