#!/usr/bin/env bash
# The Debian packages the test suite needs, installed when missing (with sudo when not root), so
# that README command 2 runs the whole suite on a fresh machine as CI does, nothing skipped:
#   mosquitto, openssl        the MQTT tests start their own broker, with a throwaway CA for TLS
#   GStreamer's RTSP server   a fake camera for the RTSP tests, run by the system python3 via gi
#                             (x264enc is in -ugly, the served clips' decoders in -libav)
#   postgresql                the dashboard's tests start their own server
#   chromium, chromium-driver the dashboard's browser tests, headless
# Nothing is installed when everything is there. Exit 1 when something is missing and cannot be
# installed (not Debian, or neither root nor sudo), naming what and how.
set -euo pipefail

missing=()
# Debian installs the broker in /usr/sbin, which a non-root PATH may lack.
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v openssl >/dev/null || missing+=(openssl)
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' 2>/dev/null \
    || missing+=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                 gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "test-deps: not a Debian system; install the equivalents of: ${missing[*]}" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "test-deps: neither root nor sudo; as root run: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "test-deps: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
