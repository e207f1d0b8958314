#!/usr/bin/env bash
# Build the lab's base image pgha/debian:<12|13> without a registry: debootstrap a minbase
# Debian with systemd and python3 from the mirror in this machine's own apt sources, then
# `docker import`. The image carries a label with a hash of this recipe and the mirror; it is
# rebuilt only when that hash changes, so a second `make lab` builds nothing.
set -euo pipefail
distro=${1:?usage: build.sh 12|13}
case "$distro" in
  12) suite=bookworm ;;
  13) suite=trixie ;;
  *) echo "unsupported Debian release '$distro' (use 12 or 13)" >&2; exit 2 ;;
esac
image="pgha/debian:$distro"
# openssh-server: the lab hosts are reachable over SSH as real hosts are (LAB_CONNECTION=ssh).
packages="systemd,systemd-sysv,python3,ca-certificates,sudo,iproute2,procps,openssh-server"

# The mirror is whatever this machine's apt uses (deb822 .sources or one-line .list files).
apt_uris() {
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) {print $i; break}}'
  } | sed 's:/*$::'
}
uris=$(apt_uris || true)
mirror=$(grep -v -- '-security' <<<"$uris" | grep -E '/debian$' | head -n1 || true)
security=$(grep -E '/debian-security$' <<<"$uris" | head -n1 || true)
if [ -z "$mirror" ]; then
  echo "No Debian mirror found in /etc/apt/sources*; add one (…/debian) to your apt sources." >&2
  exit 1
fi
security=${security:-${mirror}-security}

self_hash=$(sha256sum "$0" | cut -c1-16)
recipe=$(printf '%s\n' "$self_hash" "$suite" "$packages" "$mirror" "$security" | sha256sum | cut -c1-16)
current=$(docker image inspect -f '{{ index .Config.Labels "pgha.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  echo "$image is up to date (recipe $recipe)"
  exit 0
fi

echo "Building $image from $mirror ($suite, recipe $recipe)..."
root=$(mktemp -d /var/tmp/pgha-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2; echo "debootstrap failed; full log: $root.log" >&2; exit 1; }
rm -f "$root.log"

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
# The host's CA bundle, so HTTPS (pip) works through the machine's intercepting proxy.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/pgha-host-bundle.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
# Small images, no documentation, no recommends: the lab installs only what the roles ask for.
cat >"$root/etc/apt/apt.conf.d/90pgha-lab" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
APT
# Units that make no sense in a container and only slow boot or spin.
for unit in getty.target console-getty.service systemd-firstboot.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-remount-fs.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-fs-fuse-connections.mount \
    systemd-modules-load.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Every container makes its own SSH host keys when sshd first starts (debootstrap made one set,
# which every container of the image would otherwise share); the drop-in keeps Debian's check
# of the configuration after the keys exist.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
: >"$root/etc/machine-id"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*

tar -C "$root" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL pgha.recipe=$recipe pgha.suite=$suite" \
  - "$image" >/dev/null
echo "Built $image"
