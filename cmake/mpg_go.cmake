# mpg_go_binary(NAME DIR): builds the Go program in DIR (a module with no dependencies) into
# ${CMAKE_BINARY_DIR}/bin/NAME with Debian's Go, offline, caches in the build tree. The target
# NAME is not part of ALL, so a plain build never needs Go. The benchmarks' Go peers use it.
find_program(GO_EXECUTABLE go)
function(mpg_go_binary name dir)
  if(NOT GO_EXECUTABLE)
    message(STATUS "go not found: ${name} disabled")
    return()
  endif()
  set(bin "${CMAKE_BINARY_DIR}/bin/${name}")
  add_custom_command(
    OUTPUT "${bin}"
    COMMAND "${CMAKE_COMMAND}" -E env "GOCACHE=${CMAKE_BINARY_DIR}/gocache" "GOPATH=${CMAKE_BINARY_DIR}/gopath"
            GOFLAGS=-buildvcs=false GO111MODULE=on GOTOOLCHAIN=local GOPROXY=off
            "${GO_EXECUTABLE}" build -o "${bin}" .
    WORKING_DIRECTORY "${dir}"
    DEPENDS "${dir}/main.go" "${dir}/go.mod"
    COMMENT "Building the Go peer ${name}"
    VERBATIM)
  add_custom_target(${name} DEPENDS "${bin}")
endfunction()
