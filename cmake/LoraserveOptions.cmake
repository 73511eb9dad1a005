# Build options shared by every target: ccache, sanitizers, warnings.
option(LORASERVE_BUILD_TESTS "Build the GoogleTest suite" ON)
option(LORASERVE_BUILD_BENCH "Build the benchmarks" ON)
option(LORASERVE_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(LORASERVE_WERROR "Treat warnings in our own targets as errors" OFF)

find_program(LORASERVE_CCACHE ccache)
if(LORASERVE_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${LORASERVE_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${LORASERVE_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${LORASERVE_CCACHE})
endif()

if(LORASERVE_SANITIZE)
  # Applied globally so every object, test and the runtime agree on the ABI.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()

# loraserve_target_defaults(<target>): warnings and include root for our own targets.
function(loraserve_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-missing-field-initializers>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${LORASERVE_WERROR}>>:-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --expt-relaxed-constexpr>)
endfunction()

# loraserve_folder_library(<target> [CUDA] LINK <deps...>)
# One library per folder: every *.cc under the calling folder (excluding a
# cuda/ subfolder unless CUDA is given, and any *_main.cc) becomes <target>.
# A folder with no sources yet is an INTERFACE library, so the dependency
# direction is already expressed before the code arrives.
function(loraserve_folder_library target)
  cmake_parse_arguments(ARG "" "" "LINK;EXCLUDE" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "/cuda/|_main\\.cc$")
  foreach(ex ${ARG_EXCLUDE})
    list(FILTER srcs EXCLUDE REGEX "${ex}")
  endforeach()
  if(srcs)
    add_library(${target} ${srcs})
    target_link_libraries(${target} PUBLIC ${ARG_LINK})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
    loraserve_target_defaults(${target})
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${ARG_LINK})
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
  endif()
endfunction()
