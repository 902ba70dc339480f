#!/usr/bin/env bash
# Builds QEMU 10.0.x from Debian's source package with the Kairos patch
# series (qemu-patches/, in the order of qemu-patches/series) and
# libkairos.a, for x86_64-softmmu with KVM and TCG.
#
#   scripts/build-qemu.sh            patched build  -> build/bin/qemu-system-x86_64
#   scripts/build-qemu.sh --vanilla  same tree, same configuration, no Kairos
#                                    patches        -> build/bin-vanilla/qemu-system-x86_64
#   scripts/build-qemu.sh --no-library  the patched tree built without
#                                    libkairos (--disable-kairos), as a
#                                    distribution without the library would
#                                    build it -> build/bin-nolib/qemu-system-x86_64
#   scripts/build-qemu.sh --distro   the patched tree with the library and
#                                    the features Debian's qemu-system-x86
#                                    ships (the configure options of its
#                                    source package; -dev packages from
#                                    scripts/lib/qemu-distro-packages.tsv),
#                                    modules, Debian's firmware path, for
#                                    installing under PREFIX (default
#                                    /opt/kairos-qemu) with
#                                    scripts/install-qemu.sh (run the installed
#                                    binary: the one in build/bin-distro/ does
#                                    not find the firmware)
#                                    About 15 min on 2 cores; not in CI
#                                    (scripts/distro-test.sh builds and tests it).
#
# The patched variants are built with -Werror (--enable-werror): the series
# must add no warning, with the library or without it.
#
# Idempotent: a second run re-applies the series only if it changed (git
# keeps untouched files' timestamps) and lets ninja rebuild incrementally.
# The QEMU build also produces tests/qtest/migration-test in its build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

QEMU_VERSION=${QEMU_VERSION:-10.0.13}
DEB_VERSION=${DEB_VERSION:-1:10.0.13+ds-0+deb13u1}
# sha256 of qemu_10.0.13+ds.orig.tar.xz as published in Debian's .dsc;
# checked against the .dsc and against this pin.
ORIG_SHA256=${ORIG_SHA256:-6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae}

variant=kairos
case "${1:-}" in
    --vanilla) variant=vanilla ;;
    --no-library) variant=nolib ;;
    --distro) variant=distro ;;
    "") ;;
    *) echo "usage: $0 [--vanilla|--no-library|--distro]" >&2; exit 2 ;;
esac
# Where the distribution build is to be installed (compiled in).
PREFIX=${PREFIX:-/opt/kairos-qemu}
if [ "$variant" = distro ]; then
    case "$PREFIX" in
        /*) ;;
        *) echo "build-qemu: PREFIX must be an absolute path (got '$PREFIX')" >&2; exit 2 ;;
    esac
fi
# Which source tree: the no-library and distribution builds share the
# patched one.
source_variant=$variant
case "$variant" in nolib|distro) source_variant=kairos ;; esac

log() { printf '[build-qemu] %s\n' "$*" >&2; }
top=$root/build/qemu
src_dir=$top/src-$source_variant
build_dir=$top/build-$variant
mkdir -p "$top"

# --- 1. packages ---------------------------------------------------------
need=()
for pkg in ninja-build libglib2.0-dev libpixman-1-dev flex bison libslirp-dev libfdt-dev \
           pkg-config gcc ccache seabios ipxe-qemu qemu-system-data dpkg-dev xz-utils git; do
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || need+=("$pkg")
done
src_list=/etc/apt/sources.list.d/kairos-qemu-src.sources
if [ ! -f "$src_list" ]; then
    log "adding deb-src entries for bookworm-backports and trixie ($src_list)"
    cat >"$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_updated=no
fi
if ((${#need[@]})) || [ "${apt_updated:-yes}" = no ]; then
    log "apt-get install ${need[*]:-(sources only)}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    ((${#need[@]})) && apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import mesonbuild, pycotap' 2>/dev/null || {
    log "pip install meson==1.5.0 pycotap==1.3.1"
    python3 -m pip install -q meson==1.5.0 pycotap==1.3.1
}

# --- 2. source --------------------------------------------------------------
dl=$top/download
orig=$dl/qemu_${QEMU_VERSION}+ds.orig.tar.xz
dsc=$(ls "$dl"/qemu_"${QEMU_VERSION}"+ds-*.dsc 2>/dev/null | head -1 || true)
if [ ! -f "$orig" ] || [ -z "$dsc" ]; then
    log "apt-get source --download-only qemu=$DEB_VERSION"
    mkdir -p "$dl"
    (cd "$dl" && apt-get source -qq --download-only "qemu=$DEB_VERSION" 2>&1 | grep -v "unsandboxed" >&2 || true)
    dsc=$(ls "$dl"/qemu_"${QEMU_VERSION}"+ds-*.dsc 2>/dev/null | head -1 || true)
    [ -f "$orig" ] && [ -n "$dsc" ] || { echo "build-qemu: could not download QEMU $DEB_VERSION source" >&2; exit 1; }
fi
want=$(awk '/^Checksums-Sha256:/{f=1;next} f&&/^ /{print} f&&!/^ /{f=0}' "$dsc" | awk -v n="$(basename "$orig")" '$3==n{print $1}')
have=$(sha256sum "$orig" | awk '{print $1}')
if [ -z "$want" ] || [ "$want" != "$have" ]; then
    echo "build-qemu: checksum mismatch for $orig (dsc says '${want}', file is $have)" >&2
    exit 1
fi
if [ -n "$ORIG_SHA256" ] && [ "$ORIG_SHA256" != "$have" ]; then
    echo "build-qemu: $orig is not the pinned tarball ($ORIG_SHA256)" >&2
    exit 1
fi
log "source checksum ok ($have)"

if [ ! -d "$src_dir/.git" ]; then
    log "unpacking into $src_dir"
    rm -rf "$src_dir" "$src_dir.tmp"
    mkdir -p "$src_dir.tmp"
    tar -xf "$orig" -C "$src_dir.tmp" --strip-components=1
    debian_tar=$(ls "$dl"/qemu_"${QEMU_VERSION}"+ds-*.debian.tar.xz | head -1)
    tar -xf "$debian_tar" -C "$src_dir.tmp" debian/patches/skip-unpack-edk2-blobs.patch
    (
        cd "$src_dir.tmp"
        # The +ds tarball has no edk2 blobs: Debian's own fix.
        patch -s -p1 <debian/patches/skip-unpack-edk2-blobs.patch
        rm -rf debian
        git init -q
        # No background auto-gc: it would hold the repository's locks.
        git config gc.auto 0
        git config maintenance.auto false
        git -c user.name=kairos -c user.email=kairos@localhost add -A
        git -c user.name=kairos -c user.email=kairos@localhost commit -q -m "QEMU $QEMU_VERSION (Debian +ds source)"
        git tag pristine
    )
    mv "$src_dir.tmp" "$src_dir"
fi

# --- 3. patches ---------------------------------------------------------
if [ "$source_variant" = kairos ]; then
    series_id=$(cd qemu-patches && cat series $(grep -v '^#' series) 2>/dev/null | sha256sum | awk '{print $1}')
else
    series_id=none
fi
if [ "$(cat "$src_dir/.kairos-series" 2>/dev/null)" != "$series_id" ]; then
    log "applying the patch series ($source_variant)"
    # Build the patched commit in a scratch worktree, then move the source
    # tree to it: git rewrites only the files that differ, so ninja
    # recompiles only what the changed patches touch.
    scratch=$top/am-$source_variant
    (
        cd "$src_dir"
        git worktree remove --force "$scratch" >/dev/null 2>&1 || rm -rf "$scratch"
        git worktree prune
        git worktree add -q -f --detach "$scratch" pristine
    )
    (
        cd "$scratch"
        if [ "$source_variant" = kairos ]; then
            while read -r p; do
                case "$p" in ''|'#'*) continue ;; esac
                git -c user.name=kairos -c user.email=kairos@localhost am -q --keep-cr "$root/qemu-patches/$p" || {
                    echo "build-qemu: patch $p does not apply" >&2; git am --abort; exit 1; }
            done <"$root/qemu-patches/series"
        fi
    )
    new_head=$(git -C "$scratch" rev-parse HEAD)
    git -C "$src_dir" checkout -q -f --detach "$new_head"
    git -C "$src_dir" worktree remove --force "$scratch"
    echo "$series_id" >"$src_dir/.kairos-series"
fi

# --- 4. libkairos ---------------------------------------------------------
# QEMU's meson finds the library through its pkg-config file.
configure_extra=(--disable-werror)
case "$variant" in
    kairos)
        bash scripts/build-libkairos.sh >&2
        export PKG_CONFIG_PATH=$root/build/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
        configure_extra=(--enable-werror --enable-kairos) ;;
    nolib) configure_extra=(--enable-werror --disable-kairos) ;;
    distro)
        bash scripts/build-libkairos.sh >&2
        export PKG_CONFIG_PATH=$root/build/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
        # shellcheck source=scripts/lib/qemu-distro.sh
        . scripts/lib/qemu-distro.sh
        distro_configure_options "$dl" "$QEMU_VERSION" "$top/debian"
        # Debian's own build options for the system emulator (debian/rules),
        # x86_64 only, no tools (Debian ships them in qemu-utils) and no
        # -Werror (more of QEMU is compiled than the lab build checks).
        configure_extra=(--prefix="$PREFIX" --sysconfdir=/etc --localstatedir=/var
            --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
            --disable-download --disable-containers --disable-xkbcommon
            --disable-user --disable-linux-user --disable-tools --disable-guest-agent
            --disable-xen --enable-modules --with-pkgversion="Kairos"
            --disable-werror --enable-kairos "${distro_options[@]}") ;;
esac

# --- 5. configure and build ---------------------------------------------
# Through ccache (its masquerading gcc/cc first in PATH), with paths under
# build/qemu hashed relative to it: the tree without the library compiles
# the same preprocessed sources as the one with it, so its build is mostly
# cache hits (the test command builds both).
export PATH=/usr/lib/ccache:$PATH CCACHE_DIR=$top/ccache CCACHE_BASEDIR=$top CCACHE_NOHASHDIR=true
config_id=$(printf '%s\n' "$variant" ccache "${configure_extra[@]}" | sha256sum | awk '{print $1}')
if [ ! -f "$build_dir/build.ninja" ] || [ "$(cat "$build_dir/.kairos-config" 2>/dev/null)" != "$config_id" ]; then
    log "configuring $build_dir"
    rm -rf "$build_dir"
    mkdir -p "$build_dir"
    if [ "$variant" = distro ]; then
        base_options=(--target-list=x86_64-softmmu --disable-docs --disable-install-blobs)
    else
        base_options=(--target-list=x86_64-softmmu --without-default-features --enable-tcg
            --enable-kvm --enable-slirp --enable-fdt=system --disable-docs --disable-install-blobs)
    fi
    (cd "$build_dir" && "$src_dir/configure" "${base_options[@]}" \
        "${configure_extra[@]}" >"$build_dir/configure.log" 2>&1) || {
        echo "build-qemu: configure failed, see $build_dir/configure.log" >&2; tail -20 "$build_dir/configure.log" >&2; exit 1; }
    echo "$config_id" >"$build_dir/.kairos-config"
fi
targets=(qemu-system-x86_64 tests/qtest/migration-test)
# What `ninja install` installs: the emulator, its modules and data.
[ "$variant" = distro ] && targets=(all)
log "ninja ${targets[*]}"
ninja -C "$build_dir" "${targets[@]}" >"$build_dir/ninja.log" 2>&1 || {
    echo "build-qemu: build failed, see $build_dir/ninja.log" >&2; grep -m 20 -A5 "error" "$build_dir/ninja.log" >&2; exit 1; }

# --- 6. firmware and binary ------------------------------------------------
# The distribution build finds the firmware on its --firmwarepath, as
# installed; the lab builds are given it in their build tree.
if [ "$variant" != distro ]; then
    data=$build_dir/qemu-bundle/usr/local/share/qemu
    mkdir -p "$data"
    for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom \
             /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/linuxboot.bin /usr/share/qemu/kvmvapic.bin \
             /usr/share/qemu/multiboot_dma.bin /usr/share/qemu/pvh.bin; do
        [ -e "$f" ] && ln -sf "$(readlink -f "$f")" "$data/$(basename "$f")"
    done
fi
bin_dir=$root/build/bin
[ "$variant" = kairos ] || bin_dir=$root/build/bin-$variant
mkdir -p "$bin_dir"
ln -sf "$build_dir/qemu-system-x86_64" "$bin_dir/qemu-system-x86_64"
[ ! -e "$build_dir/tests/qtest/migration-test" ] ||
    ln -sf "$build_dir/tests/qtest/migration-test" "$bin_dir/migration-test"
log "ok: $bin_dir/qemu-system-x86_64 ($("$bin_dir/qemu-system-x86_64" --version | head -1))"
