#!/usr/bin/env bash
# install_test.sh BUILD_DIR: installs mpg from BUILD_DIR into a temporary prefix, then builds and
# runs tests/consumer twice: through find_package(mpg CONFIG) and through pkg-config.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/consumer"
pc=$(dirname "$(find "$tmp/prefix" -name mpg.pc | head -n 1)")
c++ -O1 "$src/main.cpp" $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs mpg) -o "$tmp/pc-consumer"
"$tmp/pc-consumer"
# add_subdirectory: the consumer vendors mpg's source tree.
mkdir -p "$tmp/sub"
cp "$src/main.cpp" "$tmp/sub/"
cat > "$tmp/sub/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(sub LANGUAGES CXX C)
set(CMAKE_CXX_STANDARD 20)
add_subdirectory("$src/../.." mpg)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE mpg::mpg)
CM
cmake -S "$tmp/sub" -B "$tmp/sub/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/sub/build" -j "$(nproc)" >/dev/null
"$tmp/sub/build/consumer"
echo "install_test: find_package, pkg-config and add_subdirectory consumers passed"
