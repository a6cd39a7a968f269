#!/usr/bin/env bash
# Install everything napari-domainseg needs on a fresh Debian-like machine:
# system packages (virtual display, OpenGL, Qt's xcb libraries, GDAL and
# dicom3tools for the cross-checks), then a virtual environment in .venv with
# the package and its test extras (PyQt6). Safe to run again: it only
# installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(
  xvfb xauth                                   # virtual display for napari/Qt
  libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3   # OpenGL (Mesa) and Qt runtime
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
  gdal-bin                                     # gdalinfo / gdal_polygonize cross-checks
  dicom3tools                                  # dciodvfy: DICOM conformance checks
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.domainseg-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing napari-domainseg[test] into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "bootstrap: ready ($("$VENV/bin/python" -c 'import napari; print("napari", napari.__version__)'))"
