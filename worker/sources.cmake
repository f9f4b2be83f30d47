# Image I/O, the no-reference quality measure and the "quality" judge; the
# lead's worker/CMakeLists.txt adds these to joust_worker (which links
# TurboJPEG, libspng, libwebp and joust_common).
set(JOUST_WORKER_IMAGE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/image.c
  ${CMAKE_CURRENT_LIST_DIR}/imgsrc.c
  ${CMAKE_CURRENT_LIST_DIR}/quality.c
  ${CMAKE_CURRENT_LIST_DIR}/judge_quality.c)
