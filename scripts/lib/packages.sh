# Sourced by the scripts: install the Debian packages named that are not
# installed yet (one apt-get run, quiet, without recommends).
#
#   ensure_packages TAG PKG...
ensure_packages() {
    local tag=$1 pkg need=()
    shift
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    printf '[%s] apt-get install %s\n' "$tag" "${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
