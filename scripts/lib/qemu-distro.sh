# The feature set of Debian's qemu-system-x86, for scripts/build-qemu.sh
# --distro: the configure options Debian's own build passes (its source
# package's debian/extract-config-opts over debian/control), each feature's
# -dev packages installed (scripts/lib/qemu-distro-packages.tsv), a feature
# this distribution cannot build left out with a line saying so.
# Sourced; needs log().

distro_packages_table=scripts/lib/qemu-distro-packages.tsv

# The packages of FEATURE ("-" for none); fails for a feature the table
# does not know (Debian's options changed: the table must say).
distro_feature_packages() {
    local found
    found=$(awk -F'\t' -v f="$1" '!/^#/ && $1 == f { print $2; n++ } END { exit n ? 0 : 1 }' \
        "$distro_packages_table") || {
        echo "build-qemu: Debian's build enables '$1', which $distro_packages_table does not list" >&2
        return 1
    }
    echo "$found"
}

# Each package of the table that apt can install (one apt-cache call).
declare -A distro_available=()
distro_find_available() {
    local pkg line all
    # shellcheck disable=SC2046 # the table's package names
    all=$(apt-cache policy $(awk -F'\t' '!/^#/ && $2 != "-" { print $2 }' "$distro_packages_table" |
        tr ' ' '\n' | sort -u) 2>/dev/null)
    while read -r line; do
        case "$line" in
            *:) [[ "$line" == *" "* ]] || pkg=${line%:} ;;
            "Candidate: "[0-9]*) distro_available[$pkg]=1 ;;
        esac
    done <<<"$all"
}

# True when apt can install every package named (or there are none).
distro_installable() {
    local pkg
    for pkg in "$@"; do
        [ "$pkg" = - ] && continue
        [ -n "${distro_available[$pkg]:-}" ] || return 1
    done
}

# Install PACKAGES not yet installed. One that does not install from the
# main suite (its library is already at the backports version, as the
# stock QEMU of scripts/install-stock-qemu.sh brings) comes from
# bookworm-backports, that package alone.
distro_install() {
    local need=() pkg
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install ${#need[@]} packages for Debian's feature set"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 && return 0
    for pkg in "${need[@]}"; do
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
            apt-get install -y -qq --no-install-recommends "$pkg/bookworm-backports" >/dev/null || {
                echo "build-qemu: cannot install $pkg" >&2; return 1; }
    done
}

# FEATURE LABEL: when this distribution can build FEATURE (a row of the
# table), its packages join `packages` and `taken` is 1; else it is said
# left out (as LABEL) and `taken` is 0. Fails for a feature the table
# lacks.
distro_take() {
    local pkgs
    pkgs=$(distro_feature_packages "$1") || return 1
    taken=0
    # shellcheck disable=SC2086 # a list of package names
    if distro_installable $pkgs; then
        taken=1
        # shellcheck disable=SC2086
        [ "$pkgs" = - ] || packages+=($pkgs)
    else
        distro_left_out+=("$2 ($pkgs: not in this distribution)")
    fi
}

# DOWNLOAD_DIR VERSION WORK_DIR: sets distro_options (configure options)
# and distro_left_out (features left out), installing what they need.
distro_configure_options() {
    local dl=$1 version=$2 work=$3 debian_tar opt feature drv drivers=() taken=0
    local packages=()
    distro_options=()
    distro_left_out=()
    debian_tar=$(ls "$dl"/qemu_"$version"+ds-*.debian.tar.xz | head -1)
    rm -rf "$work"
    mkdir -p "$work"
    tar -xf "$debian_tar" -C "$work" debian/control debian/extract-config-opts
    distro_find_available
    local debian_options
    # Not in the for's list: there, a failure of the command would go
    # unseen and the build would configure with QEMU's defaults.
    debian_options=$(cd "$work" && sh debian/extract-config-opts linux-amd64 debian/control)
    [ -n "$debian_options" ] || {
        echo "build-qemu: debian/extract-config-opts gave no option" >&2; return 1; }
    for opt in $debian_options; do
        case "$opt" in
            --enable-*)
                distro_take "${opt#--enable-}" "${opt#--enable-}" || return 1
                [ "$taken" = 0 ] || distro_options+=("$opt") ;;
            --audio-drv-list=*)
                for drv in $(tr ',' ' ' <<<"${opt#--audio-drv-list=}"); do
                    distro_take "audio:$drv" "audio $drv" || return 1
                    [ "$taken" = 0 ] || drivers+=("$drv")
                done
                distro_options+=("--audio-drv-list=$(IFS=,; echo "${drivers[*]}")") ;;
            *) distro_options+=("$opt") ;;
        esac
    done
    for feature in "${distro_left_out[@]}"; do
        log "left out: $feature"
    done
    distro_install "${packages[@]}"
}
