"""A GStreamer RTSP server for tests: ``--port PORT --mount NAME=SPEC [--mount ...]``.

Runs under the system python3 (GObject introspection with GstRtspServer), not the venv.
SPEC is ``testsrc`` (a live 640x480 25 fps bouncing ball) or a video file path: any codec
GStreamer can decode, played at real time in its own pipeline that seeks back to the start
on end of stream (so it loops forever), handed to the RTSP side through an appsrc and
re-encoded to H.264 there. Factories are shared: every client of a mount sees the same stream.
Prints "ready" (flushed) once listening; runs until killed.
"""

import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HOST = "127.0.0.1"
ENCODE = (
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96"
)
TESTSRC = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=25/1 ! "
    + ENCODE
)
# The appsrc keeps at most a few frames and drops the oldest: a late client gets fresh frames.
APPSRC = (
    "appsrc name=src is-live=true format=time do-timestamp=true max-bytes=0 max-buffers=3 "
    "leaky-type=downstream ! videoconvert ! " + ENCODE
)
PLAYER = (
    "filesrc name=file ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
    "appsink name=sink sync=true max-buffers=2 drop=true emit-signals=true"
)


class FileMount:
    """Plays a file at real time, forever, and pushes its frames to every live appsrc."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.pipeline = Gst.parse_launch(PLAYER)
        self.pipeline.get_by_name("file").set_property("location", path)
        self.pipeline.get_by_name("sink").connect("new-sample", self._on_sample)
        self.pipeline.get_bus().add_watch(GLib.PRIORITY_DEFAULT, self._on_message)
        self._lock = threading.Lock()
        self._appsrcs: list[Gst.Element] = []

    def start(self) -> None:
        """Preroll (fails fast on a bad file), then play."""
        self.pipeline.set_state(Gst.State.PAUSED)
        result, _, _ = self.pipeline.get_state(10 * Gst.SECOND)
        if result == Gst.StateChangeReturn.FAILURE:
            message = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            reason = message.parse_error()[0].message if message else "unknown error"
            sys.exit(f"{self.name}: cannot play the file: {reason}")
        self.pipeline.set_state(Gst.State.PLAYING)

    def factory(self) -> GstRtspServer.RTSPMediaFactory:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( {APPSRC} )")
        factory.connect("media-configure", self._on_media_configure)
        return factory

    def _on_media_configure(
        self, factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        with self._lock:
            self._appsrcs.append(appsrc)
        media.connect("unprepared", self._on_unprepared, appsrc)

    def _on_unprepared(self, media: GstRtspServer.RTSPMedia, appsrc: Gst.Element) -> None:
        with self._lock:
            if appsrc in self._appsrcs:
                self._appsrcs.remove(appsrc)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        with self._lock:
            targets = list(self._appsrcs)
        for appsrc in targets:
            # A fresh buffer per media without the file's timestamps (they restart at every
            # loop): do-timestamp then stamps it with that live pipeline's running time.
            buffer = sample.get_buffer().copy()
            buffer.pts = buffer.dts = Gst.CLOCK_TIME_NONE
            appsrc.emit("push-sample", Gst.Sample.new(buffer, sample.get_caps(), None, None))
        return Gst.FlowReturn.OK

    def _on_message(self, bus: Gst.Bus, message: Gst.Message) -> bool:
        if message.type == Gst.MessageType.EOS:
            self.pipeline.seek_simple(
                Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0
            )
        elif message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            print(f"{self.name}: {error.message} ({debug})", file=sys.stderr, flush=True)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", required=True, metavar="NAME=SPEC")
    args = parser.parse_args()
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    files: list[FileMount] = []
    for item in args.mount:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            parser.error(f"--mount wants NAME=SPEC, got {item!r}")
        if spec == "testsrc":
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(f"( {TESTSRC} )")
        else:
            file = FileMount(name, spec)
            file.start()
            files.append(file)
            factory = file.factory()
        factory.set_shared(True)
        mounts.add_factory("/" + name.strip("/"), factory)

    if server.attach(None) == 0:
        sys.exit(f"cannot listen on {HOST}:{args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
