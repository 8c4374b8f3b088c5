# The bare-metal Cortex-M platform as a CMake function. A template's
# CMakeLists.txt includes this file and calls
#   ek_cortexm_firmware(<name> <its sources...>)
# to get <name>.elf (plus .bin and a .map) with edgekit's protocol, startup,
# UART and timer linked in.
include(${CMAKE_CURRENT_LIST_DIR}/ek_target.cmake)
set(EK_CORTEXM_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(EK_COMMON_DIR ${CMAKE_CURRENT_LIST_DIR} DIRECTORY)

# -O3: 1-11% fewer instructions than -O2 on the MLPerf Tiny bundles for ~5% more flash
set(EK_OPT "-O3" CACHE STRING "optimisation flags for the firmware")
set(EK_PLATFORM_SOURCES
    ${EK_COMMON_DIR}/ek_protocol.c
    ${EK_COMMON_DIR}/ek_crc32.c
    ${EK_CORTEXM_DIR}/startup.c
    ${EK_CORTEXM_DIR}/platform_cortexm.c
    ${EK_CORTEXM_DIR}/timer_cortexm.c
    ${EK_CORTEXM_DIR}/syscalls.c)
foreach(source ${EK_UART_SOURCES})
  list(APPEND EK_PLATFORM_SOURCES ${EK_CORTEXM_DIR}/${source})
endforeach()

function(ek_cortexm_firmware name)
  add_executable(${name} ${ARGN} ${EK_PLATFORM_SOURCES})
  set_target_properties(${name} PROPERTIES SUFFIX ".elf")
  target_include_directories(${name} PRIVATE ${EK_COMMON_DIR})
  separate_arguments(opt UNIX_COMMAND "${EK_OPT}")
  target_compile_options(${name} PRIVATE ${EK_CPU_FLAGS} ${opt}
    -ffunction-sections -fdata-sections -Wall -Wextra
    $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti -fno-threadsafe-statics>)
  target_link_options(${name} PRIVATE ${EK_CPU_FLAGS}
    -T${EK_CORTEXM_DIR}/linker.ld -nostartfiles
    --specs=nano.specs --specs=nosys.specs
    -Wl,--gc-sections -Wl,-Map=${CMAKE_CURRENT_BINARY_DIR}/${name}.map)
  target_link_libraries(${name} PRIVATE m)  # float kernels call expf, tanhf, ...
  set_target_properties(${name} PROPERTIES LINK_DEPENDS ${EK_CORTEXM_DIR}/linker.ld)
  if(EK_OBJCOPY)
    add_custom_command(TARGET ${name} POST_BUILD
      COMMAND ${EK_OBJCOPY} -O binary $<TARGET_FILE:${name}> ${CMAKE_CURRENT_BINARY_DIR}/${name}.bin
      VERBATIM)
  endif()
endfunction()
