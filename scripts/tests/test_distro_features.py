"""The distribution build's feature set (scripts/build-qemu.sh --distro),
checked without building it (run by scripts/qemu-tests.sh, after
build-qemu.sh downloaded the source package): every feature Debian's
qemu-system-x86 build enables is in scripts/lib/qemu-distro-packages.tsv,
and the options the build would pass keep what an operator's guests need —
the features docs/install.md names."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "10.0.13"

# What scripts/lib/qemu-distro.sh would pass to configure, its package
# installation replaced by a line naming the packages.
SCRIPT = r"""
set -euo pipefail
log() { echo "LOG $*"; }
. scripts/lib/qemu-distro.sh
distro_install() { echo "INSTALL $*"; }
distro_configure_options build/qemu/download "$1" "$2"
printf 'OPTION %s\n' "${distro_options[@]}"
"""


def distro_options(tmp_path):
    out = subprocess.run(["bash", "-c", SCRIPT, "bash", VERSION, str(tmp_path / "debian")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    options = [l.split(" ", 1)[1] for l in lines if l.startswith("OPTION ")]
    left_out = [l for l in lines if l.startswith("LOG left out")]
    return options, left_out


def test_every_debian_feature_is_in_the_table_and_the_ones_operators_need_are_kept(tmp_path):
    options, left_out = distro_options(tmp_path)
    for feature in ("kvm", "vhost-net", "gnutls", "vnc", "spice", "rbd", "seccomp",
                    "linux-io-uring", "zstd", "slirp", "libusb", "usb-redir"):
        assert f"--enable-{feature}" in options, (feature, options)
    audio = next(o for o in options if o.startswith("--audio-drv-list="))
    assert {"pa", "alsa", "pipewire"} <= set(audio.split("=", 1)[1].split(",")), audio
    # Debian 12 has no libblkio: the only feature left out, and said so.
    assert left_out == ["LOG left out: blkio (libblkio-dev: not in this distribution)"], left_out


def test_a_feature_the_table_does_not_list_stops_the_build(tmp_path):
    table = ROOT / "scripts/lib/qemu-distro-packages.tsv"
    script = SCRIPT.replace(". scripts/lib/qemu-distro.sh",
                            ". scripts/lib/qemu-distro.sh\n"
                            f"distro_packages_table={tmp_path / 'table.tsv'}")
    rows = [l for l in table.read_text().splitlines() if not l.startswith("seccomp\t")]
    (tmp_path / "table.tsv").write_text("\n".join(rows) + "\n")
    out = subprocess.run(["bash", "-c", script, "bash", VERSION, str(tmp_path / "debian")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "enables 'seccomp'" in out.stderr, out.stderr
