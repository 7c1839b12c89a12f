"""Fast mode: in-body GOPs are stream-copied bit for bit; only GOPs that show an out-of-body
frame are decoded, rendered (or cut) and re-encoded.

Copied packets keep only the NAL units a decoder needs (slices, SPS, PPS: the allow-list
`endoveil.media.nal.DECODABLE`), so SEI user data, filler and any other unit are dropped; the
codec record (``avcC``) is rebuilt from its SPS and PPS alone; re-encoded packets are
framed like the source's (length-prefixed NAL units) and carry their own SPS/PPS; the source's
parameter sets are put back in front of the first copied packet after a re-encoded stretch, so any
decoder switches cleanly at every boundary. Timestamps are rebuilt for the whole output at
once (`assign_dts`), which keeps B-frame reordering valid across joins and makes ``cut``
continuous.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.anonymize.exact import RenderStats
from endoveil.anonymize.render import Action, Black, renderer_for
from endoveil.detect.scan import Progress
from endoveil.errors import MediaError, OutputError
from endoveil.media.nal import avcc_record, length_size_of, parameter_sets, reframe
from endoveil.media.probe import VideoInfo, open_input
from endoveil.media.reader import upright, use_decoder_threads
from endoveil.media.remux import Region, assign_dts, plan_regions
from endoveil.media.writer import MUXER_OPTIONS

__all__ = ["write_fast"]


def write_fast(
    info: VideoInfo,
    hide: npt.NDArray[np.bool_],
    out_path: Path,
    *,
    action: Action,
    preset: str,
    crf: int,
    progress: Progress | None = None,
    previews: Mapping[int, npt.NDArray[np.uint8]] | None = None,
) -> RenderStats | None:
    """Write ``out_path`` copying in-body GOPs; None if this video's GOPs do not allow it.

    Args:
        info: the source (H.264 in MP4/MOV/MKV; see `fast_mode_blocker`).
        hide: one boolean per frame, True to anonymize (or drop, for ``cut``).
        out_path: the output file (the caller makes it atomic).
        action, preset, crf: as for exact mode.
        progress: called with (frames done, total).
        previews: small RGB pictures of some frames (those detection scored). A GOP whose
            frames are all hidden is then drawn from the nearest preview instead of being
            decoded: a blur of a picture a few frames away hides as much.
    """
    regions = plan_regions(info, hide)
    if regions is None:
        return None
    cut = action == "cut"
    durations = info.frame_durations()
    removed_before = np.concatenate([[0], np.cumsum(durations * (hide & cut))[:-1]])
    out_pts = info.frame_pts - info.start_pts - removed_before
    keep = ~hide if cut else np.ones(len(hide), bool)

    packet_frames = np.searchsorted(info.frame_pts, [p.pts for p in info.packets])
    decode_order_pts: list[int] = []
    for region in regions:
        if region.copy:
            decode_order_pts.extend(out_pts[packet_frames[region.packets]].tolist())
        else:
            decode_order_pts.extend(out_pts[region.frames[keep[region.frames]]].tolist())
    step = int(np.min(durations)) if len(durations) else 1
    dts = iter(assign_dts(np.asarray(decode_order_pts, np.int64), step).tolist())

    job = _FastJob(info, out_path, action, preset, crf, progress, previews or {})
    with job:
        for n, region in enumerate(regions):
            if region.copy:
                job.copy(region, out_pts[packet_frames], dts, first=n == 0)
            else:
                job.encode(region, out_pts, dts, hide, keep)
    reencoded_inbody = sum(int(np.count_nonzero(~hide[r.frames])) for r in regions if not r.copy)
    return RenderStats(
        frames_written=job.written,
        frames_anonymized=0 if cut else int(hide.sum()),
        frames_cut=int(hide.sum()) if cut else 0,
        inbody_frames_reencoded=reencoded_inbody,
        inbody_frames_lost=job.lost,
    )


class _Cursor:
    """Walks decoded (index, frame) pairs, which come in presentation order."""

    def __init__(self, frames: Iterator[tuple[int, av.VideoFrame]]) -> None:
        self._frames = frames
        self._next: tuple[int, av.VideoFrame] | None = None

    def get(self, index: int) -> av.VideoFrame | None:
        """Frame ``index``, or None if the decoder never produced it."""
        while True:
            if self._next is None:
                self._next = next(self._frames, None)
                if self._next is None:
                    return None
            at, frame = self._next
            if at > index:
                return None
            self._next = None
            if at == index:
                return frame


class _FastJob:
    """The open files of one fast-mode run: packet source, frame source, encoder, output."""

    def __init__(
        self,
        info: VideoInfo,
        out_path: Path,
        action: Action,
        preset: str,
        crf: int,
        progress: Progress | None,
        previews: Mapping[int, npt.NDArray[np.uint8]],
    ) -> None:
        self.info = info
        self.previews = previews
        self.preview_index = np.asarray(sorted(previews), np.int64)
        self.out_path = out_path
        self.renderer = renderer_for(action)
        self.black = Black()
        self.preset, self.crf = preset, crf
        self.progress = progress
        self.length_size = length_size_of(info.extradata, "h264") or 4
        self.parameter_sets = parameter_sets(info.extradata or b"", self.length_size)
        self.written = self.lost = self.done = 0

    def __enter__(self) -> _FastJob:
        self._packets_in = open_input(self.info.path)
        self._frames_in = open_input(self.info.path)
        # Each run of GOPs to re-encode is a seek, and every seek drains the decoder's threads.
        use_decoder_threads(self._frames_in.streams.video[0], self.info, seeking=True)
        src = self._packets_in.streams.video[0]
        self._demux: Iterator[av.Packet] = (p for p in self._packets_in.demux(src) if p.size > 0)
        try:
            self._out = av.open(str(self.out_path), "w", format="mp4", options=dict(MUXER_OPTIONS))
        except av.FFmpegError as exc:
            raise OutputError(f"cannot create output: {exc}", path=self.out_path) from exc
        self._stream = self._out.add_stream_from_template(src)
        self._stream.metadata.clear()
        # The codec record may carry bytes beyond its SPS and PPS: rebuild it from them alone.
        self._stream.codec_context.extradata = avcc_record(self.info.extradata or b"")
        self._stream.time_base = self.info.time_base
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._out.close()
        except av.FFmpegError as exc:
            raise OutputError(f"cannot finish output: {exc}", path=self.out_path) from exc
        finally:
            if exc_type is not None:
                self._out.close()
            self._packets_in.close()
            self._frames_in.close()

    # stream copy -----------------------------------------------------------------------------
    def copy(
        self,
        region: Region,
        packet_pts: npt.NDArray[np.int64],
        dts: Iterator[int],
        *,
        first: bool,
    ) -> None:
        """Copy the region's packets (``packet_pts``: output pts of every source packet)."""
        size = self.length_size
        for index in region.packets:
            packet = self._next_packet()
            data = reframe(bytes(packet), size, source_length_size=size)
            if index == region.packets.start and not first:
                data = self.parameter_sets + data
            keyframe = self.info.packets[index].is_keyframe
            self._mux(data, int(packet_pts[index]), next(dts), keyframe)
            self._advance()

    def _next_packet(self) -> av.Packet:
        try:
            return next(self._demux)
        except (StopIteration, av.FFmpegError) as exc:
            raise MediaError("the video ended early while copying", path=self.info.path) from exc

    # re-encode ---------------------------------------------------------------------------------
    def encode(
        self,
        region: Region,
        out_pts: npt.NDArray[np.int64],
        dts: Iterator[int],
        hide: npt.NDArray[np.bool_],
        keep: npt.NDArray[np.bool_],
    ) -> None:
        """Re-encode the region's kept frames, GOP by GOP, decoding only what must be."""
        for _ in region.packets:
            self._next_packet()  # the packet source skips what is re-encoded
        if not keep[region.frames].any():
            self.done += len(region.frames)
            return
        encoder = self._encoder()
        for gop_frames, decode, key_packet in self._chunks(region, hide, keep):
            frames = _Cursor(self._decoded(gop_frames, key_packet)) if decode else None
            for index in gop_frames.tolist():
                if not keep[index]:
                    self.done += 1
                    continue
                frame = self._picture(index, frames, bool(hide[index]))
                frame.pts, frame.time_base = int(out_pts[index]), self.info.time_base
                self._mux_encoded(encoder.encode(frame), dts)
        self._mux_encoded(encoder.encode(None), dts)

    def _chunks(
        self, region: Region, hide: npt.NDArray[np.bool_], keep: npt.NDArray[np.bool_]
    ) -> Iterator[tuple[npt.NDArray[np.int64], bool, int]]:
        """Runs of GOPs: their frames in order, whether they must be decoded, and the index of
        their first keyframe packet.

        A GOP is decoded when it shows a kept in-body frame, or a hidden one that no preview
        can stand in for; a GOP that is wholly cut is not even decoded.
        """
        frame_of = np.searchsorted(self.info.frame_pts, [p.pts for p in self.info.packets])
        run: list[npt.NDArray[np.int64]] = []
        run_decode, run_key = False, 0  # the run's first keyframe packet
        for gop in region.gops:
            frames = np.sort(frame_of[gop])
            shown = frames[keep[frames]]
            decode = bool((~hide[shown]).any()) or (
                len(shown) > 0 and (self.renderer is None or len(self.preview_index) == 0)
            )
            if run and decode != run_decode:
                yield np.concatenate(run), run_decode, run_key
                run = []
            if not run:
                run_key = gop.start
            run.append(frames)
            run_decode = decode
        if run:
            yield np.concatenate(run), run_decode, run_key

    def _picture(self, index: int, frames: _Cursor | None, hidden: bool) -> av.VideoFrame:
        w, h = self.info.width, self.info.height
        if frames is None:
            return self._from_preview(index)
        decoded = frames.get(index)
        if decoded is None:
            self.lost += not hidden
            return self.black.render(av.VideoFrame(w, h))
        frame = upright(decoded)
        if hidden and self.renderer is not None:
            frame = self.renderer.render(frame)
        return frame

    def _from_preview(self, index: int) -> av.VideoFrame:
        assert self.renderer is not None and len(self.preview_index)
        nearest = np.clip(np.searchsorted(self.preview_index, index), 1, len(self.preview_index))
        options = self.preview_index[nearest - 1 : nearest + 1]
        key = int(options[np.argmin(np.abs(options - index))])
        return self.renderer.render_preview(self.previews[key], self.info.width, self.info.height)

    def _encoder(self) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = self.info.width, self.info.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = self.info.time_base
        encoder.framerate = self.info.fps or Fraction(30)
        encoder.flags |= av.codec.context.Flags.bitexact
        self.info.colour.apply(encoder)  # as `upright` delivers: limited range, source matrix
        # No B-frames keeps the stretch closed; headers before every IDR let decoders switch.
        encoder.options = {
            "preset": self.preset,
            "crf": str(self.crf),
            "x264-params": "bframes=0:repeat-headers=1",
        }
        return encoder

    def _decoded(
        self, frames: npt.NDArray[np.int64], key_packet: int
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode ``frames`` (consecutive, in order) as (index, frame), seeking to the keyframe
        they depend on; frames that cannot be decoded are simply not yielded."""
        stream = self._frames_in.streams.video[0]
        lo, hi = int(frames[0]), int(frames[-1])
        target = self._seek_target(key_packet, lo)
        try:
            self._frames_in.seek(target, backward=True, any_frame=False, stream=stream)
            stream.codec_context.flush_buffers()
            for packet in self._frames_in.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in decoded:
                    if frame.pts is None:
                        continue
                    index = int(np.searchsorted(self.info.frame_pts, frame.pts))
                    if index > hi:
                        return  # frames come in presentation order: the run is complete
                    if index >= lo and self.info.frame_pts[index] == frame.pts:
                        yield index, frame
            for frame in stream.codec_context.decode(None):  # the decoder's last frames
                index = int(np.searchsorted(self.info.frame_pts, frame.pts))
                if lo <= index <= hi and self.info.frame_pts[index] == frame.pts:
                    yield index, frame
        except av.FFmpegError as exc:
            if not isinstance(exc, av.error.EOFError | av.error.InvalidDataError):
                raise MediaError(f"cannot decode: {exc}", path=self.info.path) from exc

    def _seek_target(self, key_packet: int, first_frame: int) -> int:
        """A time to seek to so that decoding reaches ``first_frame`` intact.

        The run's keyframe, unless the run starts with leading pictures (an open GOP: frames
        shown before their keyframe, predicted from the GOP before it) — then the keyframe
        before, or they could not be decoded. Demuxers seek by decode time, which B-frames put
        before the presentation time: the earlier of the two is used.
        """
        packets = self.info.packets
        key = key_packet
        if int(self.info.frame_pts[first_frame]) < packets[key_packet].pts:
            earlier = [i for i in range(key_packet) if packets[i].is_keyframe]
            key = earlier[-1] if earlier else 0
        packet = packets[key]
        times = [packet.pts] if packet.dts is None else [packet.pts, packet.dts]
        return min(*times, int(self.info.frame_pts[first_frame]))

    def _mux_encoded(self, packets: list[av.Packet], dts: Iterator[int]) -> None:
        for packet in packets:
            data = reframe(bytes(packet), self.length_size, source_length_size=None)
            self._mux(data, int(packet.pts), next(dts), bool(packet.is_keyframe))
            self._advance()

    # output ------------------------------------------------------------------------------------
    def _mux(self, data: bytes, pts: int, dts: int, keyframe: bool) -> None:
        packet = av.Packet(data)
        packet.pts, packet.dts = pts, dts
        packet.time_base = self.info.time_base
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        try:
            self._out.mux(packet)
        except av.FFmpegError as exc:
            raise OutputError(f"cannot write: {exc}", path=self.out_path) from exc
        self.written += 1

    def _advance(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(min(self.done, self.info.frame_count), self.info.frame_count)
