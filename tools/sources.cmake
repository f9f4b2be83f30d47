# The demo data generator (procedural images with graded degradations and a
# manifest); needs worker/ on the include path for image.h and joust_worker
# (image I/O) plus joust_common at link time.
set(JOUST_DEMO_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/demo_data.c)
