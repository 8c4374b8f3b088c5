# TensorFlow Lite Micro as the static library `tflm`, for the CPU in EK_CPU_FLAGS.
#
# TFLM_DIR (cache variable, or the environment variable of that name) is one of:
#  - a tree made by TFLM's tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py
#    (tensorflow/, signal/, third_party/ with flatbuffers, gemmlowp, ruy, kissfft
#    and, when made with OPTIMIZED_KERNEL_DIR=cmsis_nn, CMSIS-NN): every source
#    in it is compiled here;
#  - any TFLM tree or checkout together with TFLM_LIBRARY, a libtensorflow-microlite.a
#    built for this CPU (TFLM's `make ... microlite`); only its headers are used.
#
# A generated tree is compiled once per CPU: the library is kept in TFLM_CACHE
# (default: $XDG_CACHE_HOME/edgekit/tflm, else ~/.cache/edgekit/tflm; OFF turns
# it off), one archive per tree, compiler, CPU flags, optimisation and defines,
# and every later firmware for the same CPU links that archive instead of
# compiling TFLM's few hundred sources again.
set(TFLM_DIR "$ENV{TFLM_DIR}" CACHE PATH "TensorFlow Lite Micro tree (see README.md)")
set(TFLM_LIBRARY "$ENV{TFLM_LIBRARY}" CACHE FILEPATH "prebuilt libtensorflow-microlite.a for this CPU (optional)")
if(DEFINED ENV{TFLM_CACHE})
  set(_tflm_cache_default "$ENV{TFLM_CACHE}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(_tflm_cache_default "$ENV{XDG_CACHE_HOME}/edgekit/tflm")
elseif(DEFINED ENV{HOME})
  set(_tflm_cache_default "$ENV{HOME}/.cache/edgekit/tflm")
else()
  set(_tflm_cache_default OFF)
endif()
set(TFLM_CACHE "${_tflm_cache_default}" CACHE STRING "folder of TFLM libraries compiled per CPU (OFF: none)")

if(NOT TFLM_DIR)
  message(FATAL_ERROR "TFLM_DIR is not set: point it at a TensorFlow Lite Micro tree "
    "(cmake -DTFLM_DIR=... or the TFLM_DIR environment variable); see README.md")
endif()
if(NOT EXISTS "${TFLM_DIR}/tensorflow/lite/micro/micro_interpreter.h")
  message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} is not a TensorFlow Lite Micro tree "
    "(no tensorflow/lite/micro/micro_interpreter.h there)")
endif()

# third-party code sits in third_party/ in a generated tree, in the make
# downloads folder in a checkout that has run TFLM's Makefile once
set(_tflm_downloads "${TFLM_DIR}/tensorflow/lite/micro/tools/make/downloads")
set(TFLM_INCLUDE_DIRS ${TFLM_DIR})
foreach(_root "${TFLM_DIR}/third_party" "${_tflm_downloads}")
  foreach(_sub flatbuffers/include gemmlowp ruy kissfft cmsis_nn cmsis_nn/Include cmsis/CMSIS/Core/Include)
    if(EXISTS "${_root}/${_sub}")
      list(APPEND TFLM_INCLUDE_DIRS "${_root}/${_sub}")
    endif()
  endforeach()
endforeach()
if(NOT EXISTS "${TFLM_DIR}/third_party/flatbuffers/include" AND NOT EXISTS "${_tflm_downloads}/flatbuffers/include")
  message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} has no flatbuffers headers: make a tree with TFLM's "
    "create_tflm_tree.py, or run TFLM's Makefile once so it downloads its third-party code (README.md)")
endif()

option(TFLM_RELEASE "TFLM's release build: no debug checks, no error strings" ON)
set(TFLM_DEFINES TF_LITE_STATIC_MEMORY TF_LITE_DISABLE_X86_NEON KERNELS_OPTIMIZED_FOR_SPEED)
if(TFLM_RELEASE)
  # without NDEBUG every TFLITE_DCHECK in the kernels' inner loops runs: ~4.6x the instructions
  list(APPEND TFLM_DEFINES NDEBUG TF_LITE_STRIP_ERROR_STRINGS)
endif()
if(EXISTS "${TFLM_DIR}/third_party/cmsis_nn" OR EXISTS "${TFLM_DIR}/tensorflow/lite/micro/kernels/cmsis_nn")
  list(APPEND TFLM_DEFINES CMSIS_NN)
endif()

if(TFLM_LIBRARY)
  if(NOT EXISTS "${TFLM_LIBRARY}")
    message(FATAL_ERROR "TFLM_LIBRARY=${TFLM_LIBRARY} does not exist")
  endif()
  add_library(tflm STATIC IMPORTED GLOBAL)
  set_target_properties(tflm PROPERTIES IMPORTED_LOCATION "${TFLM_LIBRARY}")
  target_include_directories(tflm INTERFACE ${TFLM_INCLUDE_DIRS})
  target_compile_definitions(tflm INTERFACE ${TFLM_DEFINES})
  return()
endif()

if(EXISTS "${TFLM_DIR}/tensorflow/lite/micro/tools/make/Makefile")
  message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} is a TFLM checkout, not a generated tree: run "
    "`python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py "
    "--makefile_options=\"TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn\" OUT` "
    "in it and set TFLM_DIR=OUT, or give TFLM_LIBRARY (README.md)")
endif()

file(GLOB_RECURSE TFLM_SOURCES CONFIGURE_DEPENDS
  "${TFLM_DIR}/tensorflow/*.cc" "${TFLM_DIR}/tensorflow/*.c"
  "${TFLM_DIR}/signal/*.cc" "${TFLM_DIR}/signal/*.c"
  "${TFLM_DIR}/third_party/*.c" "${TFLM_DIR}/third_party/*.cc")
if(NOT TFLM_SOURCES)
  message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} holds no TFLM sources")
endif()

separate_arguments(_tflm_opt UNIX_COMMAND "${EK_OPT}")
set(_tflm_flags ${EK_CPU_FLAGS} ${_tflm_opt} -ffunction-sections -fdata-sections -w
  $<$<COMPILE_LANGUAGE:CXX>:-std=c++17 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit>)

if(TFLM_CACHE)
  # the key names everything that changes the archive's code; a tree regenerated
  # in place changes its sources' timestamps, so it gets a new key too
  set(_tflm_facts "${CMAKE_CXX_COMPILER};${CMAKE_CXX_COMPILER_VERSION};${_tflm_flags};${TFLM_DEFINES}")
  foreach(_source ${TFLM_SOURCES})
    file(TIMESTAMP "${_source}" _stamp "%s" UTC)
    string(APPEND _tflm_facts ";${_source}@${_stamp}")
  endforeach()
  string(SHA256 _tflm_key "${_tflm_facts}")
  string(SUBSTRING "${_tflm_key}" 0 20 _tflm_key)
  set(TFLM_CACHED_LIBRARY "${TFLM_CACHE}/libtflm-${_tflm_key}.a")
  if(EXISTS "${TFLM_CACHED_LIBRARY}")
    message(STATUS "TFLM: compiled for these flags already, linking ${TFLM_CACHED_LIBRARY}")
    add_library(tflm STATIC IMPORTED GLOBAL)
    set_target_properties(tflm PROPERTIES IMPORTED_LOCATION "${TFLM_CACHED_LIBRARY}")
    target_include_directories(tflm SYSTEM INTERFACE ${TFLM_INCLUDE_DIRS})
    target_compile_definitions(tflm INTERFACE ${TFLM_DEFINES})
    return()
  endif()
endif()

add_library(tflm STATIC ${TFLM_SOURCES})
target_include_directories(tflm SYSTEM PUBLIC ${TFLM_INCLUDE_DIRS})
target_compile_definitions(tflm PUBLIC ${TFLM_DEFINES})
target_compile_options(tflm PRIVATE ${_tflm_flags})
if(TFLM_CACHE)
  # published with one rename, so a build running beside this one sees the whole archive or none
  string(RANDOM LENGTH 12 _tflm_part)
  add_custom_command(TARGET tflm POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory "${TFLM_CACHE}"
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:tflm> "${TFLM_CACHED_LIBRARY}.${_tflm_part}.part"
    COMMAND ${CMAKE_COMMAND} -E rename "${TFLM_CACHED_LIBRARY}.${_tflm_part}.part" "${TFLM_CACHED_LIBRARY}"
    VERBATIM)
endif()
