# CUDA is optional and automatic.
#   LORASERVE_CUDA=AUTO (default): on when an nvcc is found by check_language(CUDA).
#   LORASERVE_CUDA=ON : required; configure fails without nvcc.
#   LORASERVE_CUDA=OFF: CPU backend only.
# CMAKE_CUDA_ARCHITECTURES defaults to 90 (Hopper); set it to build others.
set(LORASERVE_CUDA "AUTO" CACHE STRING "CUDA backend: AUTO, ON or OFF")
set_property(CACHE LORASERVE_CUDA PROPERTY STRINGS AUTO ON OFF)

set(LORASERVE_HAVE_CUDA OFF)
if(NOT LORASERVE_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    # Debian's PATH may not have the toolkit; look in the standard location too.
    if(NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
      set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures to build" FORCE)
    endif()
    if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
      set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 cannot ask nvcc for C++20
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(LORASERVE_HAVE_CUDA ON)
  elseif(LORASERVE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LORASERVE_CUDA=ON but no CUDA compiler was found "
                        "(set CUDACXX or put nvcc on PATH)")
  else()
    message(STATUS "loraserve: no CUDA compiler found; building the CPU backend only")
  endif()
endif()
