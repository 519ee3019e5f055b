#!/usr/bin/env bash
# mpg_text.sh ARCHIVE: moves libmpg's code into one section, mpg_text, so the linker brackets it
# with __start_mpg_text/__stop_mpg_text and the preemption signal handler can tell runtime code
# from application code (src/runtime/preempt.cpp). Renamed: each object's .text (and its
# .text.unlikely/.hot/.startup parts) and the COMDAT sections of functions in namespace mpg
# instantiated by libmpg. Other COMDAT code (std::) keeps its name, so the linker can still
# merge it with the same code from the application.
set -euo pipefail
lib=$1
objdump=${OBJDUMP:-objdump}
objcopy=${OBJCOPY:-objcopy}
mapfile -t sections < <("$objdump" -h "$lib" | awk '$1 ~ /^[0-9]+$/ {print $2}' |
  grep -E '^\.text(\.(unlikely|hot|startup|exit))?(\._Z(N|NK|ZN|ZNK|L)[0-9]*mpg.*)?$' | sort -u)
((${#sections[@]})) || exit 0
args=()
for s in "${sections[@]}"; do args+=(--rename-section "$s=mpg_text"); done
"$objcopy" "${args[@]}" "$lib"
