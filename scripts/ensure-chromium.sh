#!/usr/bin/env bash
# The browser test drives the system's Chromium (playwright-core downloads no browser).
# Installs Debian's chromium package when it is missing, as on a fresh CI machine, and a font with
# Chinese characters when none is installed (the demo shop sells 抹茶蛋糕; without one, the
# screenshots show empty boxes).
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
PACKAGES=()
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM not found; installing Debian's chromium package" >&2
  PACKAGES+=(chromium)
fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh family)" ]; then
  echo "ensure-chromium: no font with Chinese characters; installing fonts-wqy-microhei" >&2
  PACKAGES+=(fonts-wqy-microhei)
fi
if [ "${#PACKAGES[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM is still missing after installing chromium" >&2
  exit 1
fi
