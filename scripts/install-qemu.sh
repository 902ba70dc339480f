#!/usr/bin/env bash
# Installs the distribution build of the patched QEMU
# (scripts/build-qemu.sh --distro: Debian's feature set, the library linked,
# the policy off until asked for) under the prefix it was configured for,
# checks the installed emulator, or removes it.
#
#   PREFIX=/opt/kairos-qemu bash scripts/build-qemu.sh --distro   # first (~15 min)
#   bash scripts/install-qemu.sh             install into the build's prefix (root)
#   DESTDIR=DIR bash scripts/install-qemu.sh stage it under DIR, for a package
#   bash scripts/install-qemu.sh --check     check the installed emulator: it
#                                            starts a machine with Debian's firmware,
#                                            has the features below, the policy is off
#   bash scripts/install-qemu.sh --uninstall remove every file it installed
#
# The firmware comes from Debian's seabios, ipxe-qemu and qemu-system-data
# packages (the build's --firmwarepath is Debian's), so nothing is copied
# out of the build tree. The list of installed files is kept at
# PREFIX/share/kairos-qemu/install-log.txt, which --uninstall reads.
set -euo pipefail
# DESTDIR as the caller meant it (relative to where it was run), absolute
# and without a trailing slash, as meson joins it.
destdir=""
[ -z "${DESTDIR:-}" ] || destdir=$(realpath -m -- "$DESTDIR")
cd "$(dirname "$0")/.."

log() { printf '[install-qemu] %s\n' "$*" >&2; }
die() { echo "install-qemu: $*" >&2; exit 1; }

build_dir=build/qemu/build-distro
action=install
case "${1:-}" in
    "") ;;
    --check) action=check ;;
    --uninstall) action=uninstall ;;
    *) echo "usage: $0 [--check|--uninstall]" >&2; exit 2 ;;
esac

# The prefix the build was configured with (baked into the binary: its
# modules and data are found there).
prefix_of_build() {
    [ -f "$build_dir/build.ninja" ] ||
        die "no distribution build in $build_dir: run 'bash scripts/build-qemu.sh --distro' first"
    python3 - "$build_dir" <<'PY'
import json, sys
opts = json.load(open(f"{sys.argv[1]}/meson-info/intro-buildoptions.json"))
print(next(o["value"] for o in opts if o["name"] == "prefix"))
PY
}
# The prefix is the build's: meson installs there, and the binary looks
# for its modules and data there.
if [ -f "$build_dir/build.ninja" ]; then
    prefix=$(prefix_of_build)
    if [ -n "${PREFIX:-}" ] && [ "$PREFIX" != "$prefix" ]; then
        die "the build in $build_dir is for $prefix; for PREFIX=$PREFIX build it again: PREFIX=$PREFIX bash scripts/build-qemu.sh --distro"
    fi
else
    [ "$action" != install ] ||
        die "no distribution build in $build_dir: run 'bash scripts/build-qemu.sh --distro' first"
    prefix=${PREFIX:-/opt/kairos-qemu}
fi
manifest_dir=$prefix/share/kairos-qemu
manifest=$manifest_dir/install-log.txt
qemu=$prefix/bin/qemu-system-x86_64

install_it() {
    log "meson install -C $build_dir${destdir:+ --destdir $destdir} (prefix $prefix)"
    meson install -C "$build_dir" --no-rebuild --quiet ${destdir:+--destdir "$destdir"} >/dev/null
    mkdir -p "$destdir$manifest_dir"
    # Meson's log names the files it installed and the directories it
    # created (up to the destination's root, DESTDIR in front): the list
    # keeps what lies in the prefix, as installed, and the list's own
    # file and folder.
    local f
    {
        while read -r f; do
            f=${f#"$destdir"}
            case "$f" in "$prefix" | "$prefix"/*) echo "$f" ;; esac
        done < <(grep -v '^#' "$build_dir/meson-logs/install-log.txt")
        echo "$manifest_dir"
        echo "$manifest"
    } >"$destdir$manifest"
    log "installed under $prefix ($(grep -c . "$destdir$manifest") files and folders);" \
        "removal: bash scripts/install-qemu.sh --uninstall"
    echo "$destdir$qemu"
}

# Remove what the list names: its files, then its folders once empty,
# deepest first (a folder that holds something else stays).
uninstall_it() {
    [ -f "$manifest" ] || die "nothing to remove: no $manifest"
    local f n=0 dirs=()
    while read -r f; do
        case "$f" in "$prefix" | "$prefix"/*) ;; *) die "$manifest lists $f, outside $prefix: not removing anything" ;; esac
    done <"$manifest"
    while read -r f; do
        if [ -d "$f" ] && [ ! -L "$f" ]; then
            dirs+=("$f")
        elif [ -e "$f" ] || [ -L "$f" ]; then
            rm -f -- "$f"
            n=$((n + 1))
        fi
    done <"$manifest"
    if ((${#dirs[@]})); then
        while read -r f; do
            rmdir --ignore-fail-on-non-empty -- "$f"
        done < <(printf '%s\n' "${dirs[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
    fi
    log "removed $n files under $prefix"
}

# One QMP session with the installed emulator: a PC machine (TCG: its
# BIOS and option ROMs loaded from the firmware path, never run) with a
# VNC server (an emulator without VNC refuses -vnc), the parameters
# queried, then quit.
qmp_session() {
    printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-migrate-parameters"}' \
        '{"execute":"quit"}' |
        timeout 60 "$qemu" -machine pc -accel tcg -m 128 -nodefaults -display none \
            -vnc none -S -sandbox on -qmp stdio 2>&1
}

check_it() {
    [ -x "$qemu" ] || die "no emulator at $qemu (install first)"
    local version out missing=()
    version=$("$qemu" --version | head -1)
    log "$version"
    [[ "$version" == *"(Kairos)"* ]] || die "$qemu is not the Kairos build"
    out=$(qmp_session) || die "the emulator did not start a PC machine: $out"
    [[ "$out" == *'"x-convergence-policy": "off"'* ]] ||
        die "the policy is not off by default: $out"
    # A feature of Debian's set that operators rely on, and how to see it.
    have() { grep -q -- "$2" <<<"$("$qemu" "$1" help 2>&1)" || missing+=("$3"); }
    have -display '^spice-app' "spice (module)"
    have -display '^gtk' "gtk (module)"
    have -netdev '^tap' tap
    have -netdev '^vhost-user' vhost-user
    have -object '^  tls-creds-x509' "TLS (tls-creds-x509)"
    have -audiodev '^pa' "pulseaudio (module)"
    have -device '^name "virtio-net-pci"' virtio-net-pci
    have -device '^name "usb-redir"' "usb-redir (module)"
    grep -q -- 'rbd' <<<"$("$qemu" -drive format=help 2>&1)" || missing+=("rbd (module)")
    ((${#missing[@]} == 0)) || die "missing from $qemu: ${missing[*]}"
    log "ok: firmware found, seccomp sandbox on, policy off by default; vnc, spice, gtk, tap, vhost-user, TLS, pulseaudio, virtio-net, usb-redir, rbd present"
}

case "$action" in
    install) install_it ;;
    uninstall) uninstall_it ;;
    check) check_it ;;
esac
