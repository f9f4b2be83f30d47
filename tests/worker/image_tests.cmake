# Tests of image I/O, the quality measure/judge and the demo data generator.
# Included from tests/worker/CMakeLists.txt; joust_worker (the lead's target)
# holds worker/sources.cmake's files. The demo generator is compiled into
# test_quality directly, so the test does not depend on how tools/ packages it.
include(${CMAKE_CURRENT_LIST_DIR}/../../tools/sources.cmake)

joust_test(test_image ${CMAKE_CURRENT_LIST_DIR}/test_image.c)
target_include_directories(test_image PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../worker)
# libwebp, libspng and TurboJPEG are used directly to craft test inputs.
target_link_libraries(test_image PRIVATE joust_worker PkgConfig::WEBP PkgConfig::SPNG
  PkgConfig::TURBOJPEG)

joust_test(test_quality ${CMAKE_CURRENT_LIST_DIR}/test_quality.c ${JOUST_DEMO_SOURCES})
target_include_directories(test_quality PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../worker
  ${CMAKE_CURRENT_LIST_DIR}/../../tools)
target_link_libraries(test_quality PRIVATE joust_worker)
