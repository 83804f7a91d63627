"""Real media files generated in Python, for tests and demo data.

- :func:`tone_mp3` encodes a sine wave with LAME (``lameenc``) and can prefix an ID3v2.3 tag
  (title, chapters) written by mutagen.
- :func:`tone_m4a` and :func:`tone_mp4_video` write ISO-BMFF files by hand, since no AAC or
  H.264 encoder is available. Their structure is complete and self-consistent (sample tables,
  chunk offsets, durations, codec configuration). The AAC frames are silent AAC-LC frames padded to
  the requested bitrate with fill elements; the H.264 track is a flat grey picture: IDR frames
  made of empty intra macroblocks followed by P frames that skip every macroblock. They were
  written by hand from the specifications and have not been checked with a decoder here (there
  is none on the build machine); the tests only need parsers to read them.
"""

from __future__ import annotations

import io
import math
import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lameenc
import mutagen.id3

__all__ = ["tone_m4a", "tone_mp3", "tone_mp4_video"]

_id3: Any = mutagen.id3  # partially typed upstream

_AMPLITUDE = 0.3 * 32767
_AAC_FRAME_SAMPLES = 1024
_AAC_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


# --------------------------------------------------------------------------------------------
# MP3


def _pcm(seconds: float, frequency: float, sample_rate: int, channels: int) -> bytes:
    """Signed 16-bit native-endian interleaved PCM of a sine wave."""
    total = max(0, round(seconds * sample_rate))
    step = 2 * math.pi * frequency / sample_rate
    # An integral frequency repeats exactly every second: compute one second and tile it.
    period = min(total, sample_rate) if float(frequency).is_integer() else total
    mono = array("h", (round(_AMPLITUDE * math.sin(step * i)) for i in range(period)))
    if channels == 2:
        block = array("h", bytes(len(mono) * 4))
        block[0::2] = mono
        block[1::2] = mono
    else:
        block = mono
    if period and period < total:
        repeats, rest = divmod(total, period)
        block = block * repeats + block[: rest * channels]
    return block.tobytes()


def _id3_tag(title: str | None, chapters: Sequence[tuple[int, int, str]] | None) -> bytes:
    tag: Any = _id3.ID3()
    if title is not None:
        tag.add(_id3.TIT2(encoding=3, text=[title]))
    if chapters:
        ids = [f"chp{i}" for i in range(len(chapters))]
        tag.add(
            _id3.CTOC(
                element_id="toc",
                flags=_id3.CTOCFlags.TOP_LEVEL | _id3.CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[],
            )
        )
        for element_id, (start_ms, end_ms, chapter_title) in zip(ids, chapters, strict=True):
            tag.add(
                _id3.CHAP(
                    element_id=element_id,
                    start_time=start_ms,
                    end_time=end_ms,
                    start_offset=0xFFFFFFFF,
                    end_offset=0xFFFFFFFF,
                    sub_frames=[_id3.TIT2(encoding=3, text=[chapter_title])],
                )
            )
    buffer = io.BytesIO()
    tag.save(buffer, v2_version=3)
    return buffer.getvalue()


def tone_mp3(
    seconds: float,
    *,
    frequency: float = 440.0,
    bitrate_kbps: int = 64,
    sample_rate: int = 44100,
    channels: int = 1,
    id3: bool = True,
    title: str | None = None,
    chapters: list[tuple[int, int, str]] | None = None,
) -> bytes:
    """A CBR MP3 of a sine tone, optionally prefixed with an ID3v2.3 tag.

    ``chapters`` are ``(start_ms, end_ms, title)`` and become CHAP frames under one ordered
    top-level CTOC. With ``id3=False`` the file starts directly with the first MPEG frame (title
    and chapters are then ignored).
    """
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    audio = bytes(encoder.encode(_pcm(seconds, frequency, sample_rate, channels)))
    audio += bytes(encoder.flush())
    if not id3:
        return audio
    return _id3_tag(title, chapters) + audio


# --------------------------------------------------------------------------------------------
# Bit-level helpers (AAC frames, H.264 parameter sets and slices)


class _Bits:
    def __init__(self) -> None:
        self._bits: list[int] = []

    def __len__(self) -> int:
        return len(self._bits)

    def u(self, width: int, value: int) -> None:
        self._bits.extend((value >> shift) & 1 for shift in range(width - 1, -1, -1))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() * 2 - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def extend(self, bits: _Bits) -> None:
        self._bits.extend(bits._bits)

    def tobytes(self) -> bytes:
        """Bytes, zero-padded to a byte boundary."""
        bits = self._bits + [0] * (-len(self._bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))

    def rbsp(self) -> bytes:
        """Bytes with H.264 rbsp_trailing_bits (a stop bit, then zero padding)."""
        self.u(1, 1)
        return self.tobytes()


# --------------------------------------------------------------------------------------------
# AAC


def _audio_specific_config(sample_rate: int, channels: int) -> bytes:
    if sample_rate not in _AAC_SAMPLE_RATES:
        raise ValueError(f"unsupported AAC sample rate {sample_rate}")
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    bits = _Bits()
    bits.u(5, 2)  # audioObjectType: AAC LC
    bits.u(4, _AAC_SAMPLE_RATES.index(sample_rate))
    bits.u(4, channels)  # channelConfiguration
    bits.u(3, 0)  # GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag
    return bits.tobytes()


def _silent_ics(bits: _Bits) -> None:
    """individual_channel_stream with no scale factor bands: silence."""
    bits.u(8, 100)  # global_gain
    bits.u(1, 0)  # ics_reserved_bit
    bits.u(2, 0)  # window_sequence: ONLY_LONG_SEQUENCE
    bits.u(1, 0)  # window_shape
    bits.u(6, 0)  # max_sfb
    bits.u(1, 0)  # predictor_data_present
    bits.u(1, 0)  # pulse_data_present
    bits.u(1, 0)  # tns_data_present
    bits.u(1, 0)  # gain_control_data_present


def _aac_frame(channels: int, size: int) -> bytes:
    """A raw AAC-LC frame of silence, exactly ``size`` bytes, padded with FIL elements."""
    bits = _Bits()
    if channels == 1:
        bits.u(3, 0)  # ID_SCE
        bits.u(4, 0)  # element_instance_tag
        _silent_ics(bits)
    else:
        bits.u(3, 1)  # ID_CPE
        bits.u(4, 0)
        bits.u(1, 0)  # common_window
        _silent_ics(bits)
        _silent_ics(bits)
    available = size * 8 - len(bits) - 3  # room left once ID_END is written
    if available < 0:
        raise ValueError("AAC frame size too small")
    while available >= 7:
        if available >= 15 + 8 * 15:
            count = min(269, (available - 15) // 8)
            bits.u(3, 6)  # ID_FIL
            bits.u(4, 15)
            bits.u(8, count - 14)  # esc_count
            cost = 15 + 8 * count
        else:
            count = min(14, (available - 7) // 8)
            bits.u(3, 6)
            bits.u(4, count)
            cost = 7 + 8 * count
        if count:
            bits.u(8, 0)  # extension_type EXT_FILL, fill_nibble
            for _ in range(count - 1):
                bits.u(8, 0xA5)  # fill_byte
        available -= cost
    bits.u(3, 7)  # ID_END
    frame = bits.tobytes()
    assert len(frame) == size
    return frame


def _aac_samples(
    seconds: float, sample_rate: int, channels: int, bitrate: int
) -> tuple[list[bytes], int]:
    """(frames, duration in samples): sizes follow ``bitrate`` exactly on average."""
    count = max(1, math.ceil(seconds * sample_rate / _AAC_FRAME_SAMPLES))
    bytes_per_frame = bitrate * _AAC_FRAME_SAMPLES / sample_rate / 8
    cache: dict[int, bytes] = {}
    frames = []
    for i in range(count):
        size = math.floor((i + 1) * bytes_per_frame) - math.floor(i * bytes_per_frame)
        size = max(size, 8)
        if size not in cache:
            cache[size] = _aac_frame(channels, size)
        frames.append(cache[size])
    return frames, count * _AAC_FRAME_SAMPLES


# --------------------------------------------------------------------------------------------
# H.264


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation prevention bytes."""
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _h264_level(macroblocks: int) -> int:
    for limit, level in ((396, 21), (1620, 30), (3600, 31), (8192, 40)):
        if macroblocks <= limit:
            return level
    return 51


def _sps(width: int, height: int) -> bytes:
    bits = _Bits()
    bits.u(8, 66)  # profile_idc: Baseline
    bits.u(8, 0b11000000)  # constraint_set0/1 flags, reserved
    bits.u(8, _h264_level((width // 16) * (height // 16)))
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type
    bits.ue(1)  # max_num_ref_frames
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(width // 16 - 1)
    bits.ue(height // 16 - 1)
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    bits.u(1, 0)  # frame_cropping_flag
    bits.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, bits.rbsp())


def _pps() -> bytes:
    bits = _Bits()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.se(0)  # pic_init_qp_minus26
    bits.se(0)  # pic_init_qs_minus26
    bits.se(0)  # chroma_qp_index_offset
    bits.u(1, 1)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, bits.rbsp())


def _idr_slice(macroblocks: int, idr_pic_id: int) -> bytes:
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num
    bits.ue(idr_pic_id)
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc
    for _ in range(macroblocks):
        bits.ue(3)  # mb_type I_16x16_2_0_0: DC prediction, no coded residual
        bits.ue(0)  # intra_chroma_pred_mode: DC
        bits.se(0)  # mb_qp_delta
        bits.u(1, 1)  # Intra16x16DCLevel coeff_token: TotalCoeff 0 (nC 0)
    return _nal(0x65, bits.rbsp())


def _p_slice(macroblocks: int, frame_num: int) -> bytes:
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(5)  # slice_type: P (all slices)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, frame_num % 16)
    bits.u(1, 0)  # num_ref_idx_active_override_flag
    bits.u(1, 0)  # ref_pic_list_modification_flag_l0
    bits.u(1, 0)  # adaptive_ref_pic_marking_mode_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc
    bits.ue(macroblocks)  # mb_skip_run: every macroblock
    return _nal(0x41, bits.rbsp())


def _length_prefixed(nal: bytes) -> bytes:
    return struct.pack(">I", len(nal)) + nal


# --------------------------------------------------------------------------------------------
# ISO-BMFF


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@dataclass
class _Track:
    handler: bytes  # b"soun" | b"vide"
    timescale: int
    sample_delta: int
    samples: list[bytes]
    sample_entry: bytes
    samples_per_chunk: int
    sync_samples: list[int] | None = None  # 1-based; None: every sample is a sync sample
    width: int = 0
    height: int = 0

    @property
    def duration(self) -> int:
        return self.sample_delta * len(self.samples)

    def chunks(self) -> list[list[bytes]]:
        n = self.samples_per_chunk
        return [self.samples[i : i + n] for i in range(0, len(self.samples), n)]


def _stsc(chunks: Sequence[Sequence[bytes]]) -> bytes:
    entries: list[tuple[int, int, int]] = []
    for index, chunk in enumerate(chunks, start=1):
        if not entries or entries[-1][1] != len(chunk):
            entries.append((index, len(chunk), 1))
    body = b"".join(struct.pack(">3I", *entry) for entry in entries)
    return _full_box(b"stsc", 0, 0, struct.pack(">I", len(entries)), body)


def _stsz(samples: Sequence[bytes]) -> bytes:
    sizes = {len(sample) for sample in samples}
    if len(sizes) == 1:
        return _full_box(b"stsz", 0, 0, struct.pack(">2I", sizes.pop(), len(samples)))
    table = struct.pack(f">{len(samples)}I", *(len(sample) for sample in samples))
    return _full_box(b"stsz", 0, 0, struct.pack(">2I", 0, len(samples)), table)


def _trak(track: _Track, track_id: int, offsets: Sequence[int], movie_duration: int) -> bytes:
    is_audio = track.handler == b"soun"
    tkhd = _full_box(
        b"tkhd",
        0,
        0x3,  # enabled, in movie
        struct.pack(">5I", 0, 0, track_id, 0, movie_duration),
        bytes(8),
        struct.pack(">hhHH", 0, 0, 0x0100 if is_audio else 0, 0),
        _MATRIX,
        struct.pack(">2I", track.width << 16, track.height << 16),
    )
    mdhd = _full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">4IHH", 0, 0, track.timescale, track.duration, 0x55C4, 0),  # "und"
    )
    name = b"SoundHandler\0" if is_audio else b"VideoHandler\0"
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s3I", 0, track.handler, 0, 0, 0), name)
    media_header = (
        _full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0))
        if is_audio
        else _full_box(b"vmhd", 0, 1, struct.pack(">4H", 0, 0, 0, 0))
    )
    dinf = _box(
        b"dinf",
        _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)),
    )
    chunks = track.chunks()
    tables = [
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), track.sample_entry),
        _full_box(b"stts", 0, 0, struct.pack(">3I", 1, len(track.samples), track.sample_delta)),
    ]
    if track.sync_samples is not None:
        sync = track.sync_samples
        tables.append(
            _full_box(
                b"stss", 0, 0, struct.pack(">I", len(sync)), struct.pack(f">{len(sync)}I", *sync)
            )
        )
    tables += [
        _stsc(chunks),
        _stsz(track.samples),
        _full_box(
            b"stco",
            0,
            0,
            struct.pack(">I", len(offsets)),
            struct.pack(f">{len(offsets)}I", *offsets),
        ),
    ]
    stbl = _box(b"stbl", *tables)
    return _box(
        b"trak",
        tkhd,
        _box(b"mdia", mdhd, hdlr, _box(b"minf", media_header, dinf, stbl)),
    )


def _udta(title: str) -> bytes:
    data = _box(b"data", struct.pack(">2I", 1, 0), title.encode("utf-8"))  # type 1: UTF-8
    ilst = _box(b"ilst", _box(b"\xa9nam", data))
    meta_hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s3I", 0, b"mdir", 0x6170706C, 0, 0), b"\0")
    return _box(b"udta", _full_box(b"meta", 0, 0, meta_hdlr, ilst))


def _iso_file(
    brands: tuple[bytes, int, Iterable[bytes]], tracks: list[_Track], title: str | None
) -> bytes:
    major, minor, compatible = brands
    ftyp = _box(b"ftyp", major, struct.pack(">I", minor), *compatible)
    movie_timescale = 1000
    movie_duration = max(
        math.ceil(track.duration * movie_timescale / track.timescale) for track in tracks
    )

    # Interleave the tracks' chunks in time order.
    layout: list[tuple[float, int, int]] = []  # (start time, track index, chunk index)
    per_track_chunks = [track.chunks() for track in tracks]
    for t_index, (track, chunks) in enumerate(zip(tracks, per_track_chunks, strict=True)):
        start = 0
        for c_index, chunk in enumerate(chunks):
            layout.append((start * track.sample_delta / track.timescale, t_index, c_index))
            start += len(chunk)
    layout.sort()

    def moov(offsets: list[list[int]]) -> bytes:
        mvhd = _full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">5IH", 0, 0, movie_timescale, movie_duration, 0x10000, 0x0100),
            bytes(10),
            _MATRIX,
            bytes(24),
            struct.pack(">I", len(tracks) + 1),
        )
        traks = [
            _trak(track, index + 1, offsets[index], movie_duration)
            for index, track in enumerate(tracks)
        ]
        extra = [_udta(title)] if title is not None else []
        return _box(b"moov", mvhd, *traks, *extra)

    placeholder = [[0] * len(chunks) for chunks in per_track_chunks]
    mdat_payload_start = len(ftyp) + len(moov(placeholder)) + 8
    offsets = [[0] * len(chunks) for chunks in per_track_chunks]
    payload: list[bytes] = []
    position = mdat_payload_start
    for _, t_index, c_index in layout:
        offsets[t_index][c_index] = position
        for sample in per_track_chunks[t_index][c_index]:
            payload.append(sample)
            position += len(sample)
    return ftyp + moov(offsets) + _box(b"mdat", *payload)


def _aac_track(seconds: float, sample_rate: int, channels: int, bitrate: int) -> _Track:
    frames, _ = _aac_samples(seconds, sample_rate, channels, bitrate)
    config = _audio_specific_config(sample_rate, channels)
    average = sum(map(len, frames)) * 8 * sample_rate // (len(frames) * _AAC_FRAME_SAMPLES)
    peak = max(map(len, frames)) * 8 * sample_rate // _AAC_FRAME_SAMPLES
    decoder_specific = b"\x05" + bytes([len(config)]) + config
    decoder_config_body = (
        struct.pack(">BB", 0x40, (0x05 << 2) | 1)  # MPEG-4 audio, AudioStream
        + (max(map(len, frames))).to_bytes(3, "big")  # bufferSizeDB
        + struct.pack(">2I", peak, average)
        + decoder_specific
    )
    decoder_config = b"\x04" + bytes([len(decoder_config_body)]) + decoder_config_body
    sl_config = b"\x06\x01\x02"
    es_body = struct.pack(">HB", 1, 0) + decoder_config + sl_config
    esds = _full_box(b"esds", 0, 0, b"\x03" + bytes([len(es_body)]) + es_body)
    entry = _box(
        b"mp4a",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(8),
        struct.pack(">HHHHI", channels, 16, 0, 0, (sample_rate << 16) & 0xFFFFFFFF),
        esds,
    )
    chunk = max(1, sample_rate // _AAC_FRAME_SAMPLES)  # about one second per chunk
    return _Track(b"soun", sample_rate, _AAC_FRAME_SAMPLES, frames, entry, chunk)


def tone_m4a(
    seconds: float,
    *,
    bitrate_kbps: int = 64,
    sample_rate: int = 44100,
    channels: int = 1,
    title: str | None = None,
) -> bytes:
    """An M4A (AAC-LC in MP4) of silence lasting ``seconds`` rounded up to whole AAC frames.

    The frames are sized so that the file carries ``bitrate_kbps`` of audio data; the esds box
    declares that average bitrate. ``title`` becomes the ``©nam`` tag.
    """
    track = _aac_track(seconds, sample_rate, channels, bitrate_kbps * 1000)
    return _iso_file((b"M4A ", 0, (b"M4A ", b"mp42", b"isom")), [track], title)


def tone_mp4_video(
    seconds: float,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    keyframe_interval_s: int = 2,
    audio: bool = True,
    bitrate_kbps: int = 64,
    sample_rate: int = 44100,
    channels: int = 2,
    title: str | None = None,
) -> bytes:
    """An MP4 with an H.264 Baseline track of a flat grey picture, plus an AAC track of silence.

    ``width`` and ``height`` must be multiples of 16.
    """
    if width % 16 or height % 16 or width <= 0 or height <= 0:
        raise ValueError("width and height must be positive multiples of 16")
    macroblocks = (width // 16) * (height // 16)
    sps, pps = _sps(width, height), _pps()
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    compressor = b"amphora"
    entry = _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),
        bytes(16),
        struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
        bytes([len(compressor)]) + compressor.ljust(31, b"\0"),
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )
    frame_count = max(1, math.ceil(seconds * fps))
    gop = max(1, keyframe_interval_s * fps)
    idr_frames = [_length_prefixed(_idr_slice(macroblocks, i)) for i in range(2)]
    p_frames = [_length_prefixed(_p_slice(macroblocks, n)) for n in range(16)]
    samples: list[bytes] = []
    sync: list[int] = []
    for index in range(frame_count):
        position = index % gop
        if position == 0:
            sync.append(index + 1)
            samples.append(idr_frames[(index // gop) % 2])
        else:
            samples.append(p_frames[position % 16])
    video = _Track(b"vide", fps * 1000, 1000, samples, entry, fps, sync, width=width, height=height)
    tracks = [video]
    if audio:
        tracks.append(_aac_track(seconds, sample_rate, channels, bitrate_kbps * 1000))
    brands = (b"isom", 0x200, (b"isom", b"iso2", b"avc1", b"mp41", b"mp42"))
    return _iso_file(brands, tracks, title)
