#!/usr/bin/env bash
# Builds the release libkairos.a for C programs (QEMU) with only the
# kairos_* symbols global: the Rust static library is linked into one
# relocatable object that keeps only the sections the kairos_* functions
# reach (--gc-sections from them), LLVM bitcode and debug sections are
# dropped, every symbol but the public API is made local, and the result is
# archived as build/lib/libkairos.a next to build/include/kairos.h, with a
# pkg-config file build/lib/pkgconfig/kairos.pc (QEMU's meson finds the
# library with dependency('kairos')). Prints the archive's size and fails if
# anything but kairos_* is exported.
set -euo pipefail
cd "$(dirname "$0")/.."

out_lib=build/lib
out_include=build/include
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p kairos-ffi
raw=target/release/libkairos.a
nm -g --defined-only "$raw" 2>/dev/null | awk '$2 == "T" && $3 ~ /^kairos_/ {print $3}' | sort -u >"$work/api.syms"
[ -s "$work/api.syms" ] || { echo "build-libkairos: no kairos_* symbols in $raw" >&2; exit 1; }

roots=()
while read -r sym; do roots+=(-u "$sym"); done <"$work/api.syms"
ld -r --gc-sections "${roots[@]}" --whole-archive "$raw" -o "$work/whole.o"
objcopy --remove-section=.llvmbc --remove-section=.llvmcmd --strip-debug \
    --keep-global-symbols="$work/api.syms" "$work/whole.o" "$work/kairos.o"

exported=$(nm -g --defined-only "$work/kairos.o" | awk '{print $3}' | sort -u)
if [ "$exported" != "$(cat "$work/api.syms")" ]; then
    echo "build-libkairos: unexpected exported symbols:" >&2
    comm -13 "$work/api.syms" <(printf '%s\n' "$exported") >&2
    exit 1
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
prefix=$(pwd)/build
{
    echo "prefix=$prefix"
    echo 'libdir=${prefix}/lib'
    echo 'includedir=${prefix}/include'
    echo
    echo 'Name: kairos'
    echo 'Description: Kairos convergence policy for pre-copy live migration'
    echo "Version: $version"
    echo 'Libs: -L${libdir} -lkairos'
    echo 'Libs.private: -lpthread -ldl -lm'
    echo 'Cflags: -I${includedir}'
} >"$work/kairos.pc"

mkdir -p "$out_lib/pkgconfig" "$out_include"
# Replace outputs only when they changed, so builds that link them (QEMU)
# don't redo work for nothing.
ar rcsD "$work/libkairos.a" "$work/kairos.o"
cmp -s "$work/libkairos.a" "$out_lib/libkairos.a" || cp "$work/libkairos.a" "$out_lib/libkairos.a"
cmp -s ffi/include/kairos.h "$out_include/kairos.h" || cp ffi/include/kairos.h "$out_include/kairos.h"
cmp -s "$work/kairos.pc" "$out_lib/pkgconfig/kairos.pc" || cp "$work/kairos.pc" "$out_lib/pkgconfig/kairos.pc"
size=$(stat -c %s "$out_lib/libkairos.a")
echo "build-libkairos: $out_lib/libkairos.a ($((size / 1024)) KiB, $(wc -l <"$work/api.syms") exported symbols, all kairos_*)"
