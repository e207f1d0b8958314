#!/usr/bin/env bash
# Make sure a Docker engine answers. On Debian, as root, install docker.io and start dockerd
# ourselves when none runs; elsewhere say what to install. `stop` ends only a daemon this script
# started (its pid file lives under .lab/), never one the machine already had.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.lab"
pidfile="$state/dockerd.pid"
mkdir -p "$state"

start() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -r /etc/debian_version ] || [ "$(id -u)" != 0 ]; then
    echo "No Docker engine answers 'docker info'. Install and start Docker (on Debian as root this" >&2
    echo "script does it: apt-get install docker.io); then run make again." >&2
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    echo "Installing docker.io and debootstrap from the machine's apt sources..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  fi
  if docker info >/dev/null 2>&1; then   # the package may have started its own service
    return 0
  fi
  # A daemon killed with its session leaves a pid file behind; it does not stop a new one.
  rm -f /var/run/docker.pid
  echo "Starting dockerd (log: $state/dockerd.log)..."
  nohup dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  echo "dockerd did not answer within 60 s; see $state/dockerd.log" >&2
  exit 1
}

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    rm -f "$pidfile"
    echo "Stopped the dockerd this project started."
  else
    echo "No dockerd started by this project is running; nothing stopped."
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
