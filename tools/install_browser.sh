#!/usr/bin/env bash
# `make test`'s browser prerequisite: the `rar demo` browser tests drive headless Chromium
# (Debian's chromium + chromium-driver). Nothing to do when a chromedriver is found (on the
# PATH, or $RAR_CHROMEDRIVER); otherwise install them with apt-get as root or through
# passwordless sudo. Any other machine gets one clear message and exit status 1.
set -euo pipefail

if [ -n "${RAR_CHROMEDRIVER:-}" ] && [ -x "${RAR_CHROMEDRIVER}" ]; then exit 0; fi
if command -v chromedriver >/dev/null 2>&1; then exit 0; fi

how="apt-get install chromium chromium-driver (or set RAR_CHROMEDRIVER and RAR_CHROMIUM to a chromedriver and its browser); make test-fast runs without them"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test: chromedriver not found and this machine has no apt-get to install it: install Chromium and its chromedriver yourself, or set RAR_CHROMEDRIVER and RAR_CHROMIUM; make test-fast runs without them" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "make test: chromedriver not found, and installing it needs root or passwordless sudo: ask an administrator to run: $how" >&2
  exit 1
fi
echo "make test: installing chromium and chromium-driver (the rar demo browser tests use them)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
if ! command -v chromedriver >/dev/null 2>&1; then
  echo "make test: apt-get installed chromium-driver but no chromedriver is on the PATH ($PATH): set RAR_CHROMEDRIVER" >&2
  exit 1
fi
