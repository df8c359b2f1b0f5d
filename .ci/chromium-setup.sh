#!/usr/bin/env bash
# Install Chromium from Debian's packages for the console's browser tests (tests/web), which
# Playwright drives through its executable path (Playwright's own browser download is never
# used). Run as root; idempotent: does nothing when /usr/bin/chromium is there.
set -euo pipefail

log() { echo "chromium-setup: $*" >&2; }

if [[ -x /usr/bin/chromium ]]; then
  log "chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  log "must run as root to install chromium"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q chromium >/dev/null
log "installed: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
