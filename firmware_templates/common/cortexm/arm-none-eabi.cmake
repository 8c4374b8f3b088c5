# CMake toolchain file for bare-metal Arm with the GNU Arm Embedded toolchain.
# CPU flags are per target (ek_target.cmake); this file only names the tools.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(EK_GCC_PREFIX "arm-none-eabi-" CACHE STRING "prefix of the cross tools")
find_program(CMAKE_C_COMPILER ${EK_GCC_PREFIX}gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER ${EK_GCC_PREFIX}g++ REQUIRED)
set(CMAKE_ASM_COMPILER ${CMAKE_C_COMPILER})
find_program(EK_SIZE ${EK_GCC_PREFIX}size)
find_program(EK_OBJCOPY ${EK_GCC_PREFIX}objcopy)

# try_compile cannot link without a linker script: test with a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
