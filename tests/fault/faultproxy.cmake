# agec_faultproxy: the fault-injection proxy and the load/verification
# machinery shared by tests/fault and bench/soak. Included from both
# directories; defined once.
include(${CMAKE_CURRENT_LIST_DIR}/../testbase.cmake)
if(NOT TARGET agec_faultproxy)
  add_library(agec_faultproxy STATIC ${CMAKE_CURRENT_LIST_DIR}/proxy.c
                                     ${CMAKE_CURRENT_LIST_DIR}/fault_load.c)
  target_include_directories(agec_faultproxy PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(agec_faultproxy PUBLIC agec_static agec_testbase)
endif()
