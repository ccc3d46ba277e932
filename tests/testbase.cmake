# agec_testbase: framework-free test helpers (tests/testbase.h), shared by
# the cmocka tests, tests/fault and bench/soak. Defined once.
if(NOT TARGET agec_testbase)
  add_library(agec_testbase STATIC ${CMAKE_CURRENT_LIST_DIR}/testbase.c)
  target_include_directories(agec_testbase PUBLIC ${CMAKE_CURRENT_LIST_DIR})
endif()
