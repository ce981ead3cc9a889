"""Clip effects: extending a clip past its end, generated music beds, music under a video.

Same rules as ``services.media.ffmpeg``: ffmpeg runs as an asyncio subprocess, outputs are renamed
into place only when whole, and every failure is a MediaError.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.errors import MediaError
from services.media.ffmpeg import (
    H264_OUT,
    MP4_OUT,
    FFmpegTools,
    MediaInfo,
    Progress,
    _capture,
    atomic_output,
    default_tools,
    input_arg,
    parse_ffmpeg_banner,
    run_ffmpeg,
)
from services.media.probe import media_size, sdr_filters

EXTEND_EFFECTS: tuple[str, ...] = ("slow_tail", "boomerang", "hold_push")

_MAX_FPS = 30
# Reversing and looping keep every frame of the extension in memory, so it stays short.
_MAX_EXTEND_SECONDS = 30.0
# Past ~8x, slow motion made by blending frames is a slideshow; a longer tail keeps it fluid.
_MAX_SLOWDOWN = 8.0
_HOLD_ZOOM_PER_SECOND = 0.04
_ORIGINAL_GAIN = 0.7
AUDIO_RATE = 48000
_PROBE_TIMEOUT = 30.0
_VIDEO_X264 = [*H264_OUT, "-preset", "veryfast", "-crf", "20"]
# Every audio branch is brought to one explicit format: ffmpeg 5.1 (Debian 12) cannot negotiate
# a channel layout between aresample and apad/concat without it ("Cannot select channel layout").
AUDIO_FORMAT = f"aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
_AAC = ["-c:a", "aac", "-b:a", "128k"]

_VIDEO_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: Video: (.*)$", re.MULTILINE)
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")
_PIX_FMT_RE = re.compile(r",\s*([a-z][a-z0-9_]*)")


@dataclass(frozen=True)
class _Clip:
    info: MediaInfo
    fps: float | None
    pix_fmt: str | None
    sdr: str = ""  # filters turning an HDR stream into SDR (media_probe.sdr_filters)


async def _inspect(path: Path, tools: FFmpegTools | None) -> _Clip:
    # ffmpeg's banner, not ffprobe: MediaInfo lacks the frame rate and pixel format we need.
    tools = tools or default_tools()
    size = media_size(path)
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-i", input_arg(path)]
    _, _, err = await _capture(cmd, _PROBE_TIMEOUT)
    text = err.decode("utf-8", "replace")
    info = parse_ffmpeg_banner(text, size)
    line = next((m for m in _VIDEO_STREAM_RE.findall(text) if "(attached pic)" not in m), "")
    rates = {kind: float(n) * (1000 if k else 1) for n, k, kind in _RATE_RE.findall(line)}
    fps = rates.get("fps") or rates.get("tbr")
    pix = _PIX_FMT_RE.search(line)
    pix_fmt = pix.group(1) if pix else None
    return _Clip(info, fps if fps and fps >= 1 else None, pix_fmt, sdr_filters(line))


_Size = tuple[int, int]


def exactly(source: str, seconds: float, label: str) -> str:
    """A graph chain giving ``[label]``: ``source`` audio cut or padded with silence to
    exactly ``seconds``.

    Silence is concatenated rather than made by apad: a branch that yields no samples at all
    (a clip whose sound ends before the part being extended) leaves apad nothing to time
    itself by, and ffmpeg then writes audio forever.
    """
    silence = f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=duration={seconds:.3f},{AUDIO_FORMAT}"
    return (
        f"{source},{AUDIO_FORMAT}[{label}_s];{silence}[{label}_z];"
        f"[{label}_s][{label}_z]concat=n=2:v=0:a=1,atrim=duration={seconds:.3f},"
        f"asetpts=PTS-STARTPTS[{label}]"
    )


@dataclass(frozen=True)
class _Extension:
    """Extra inputs (options placed before each ``-i src``) and the graph making [xv] and [xa]."""

    inputs: list[list[str]]
    video: str
    audio: str | None


def _slow_tail(prep: str, fps: str, duration: float, seconds: float, _: _Size) -> _Extension:
    tail = min(duration, max(1.0, seconds / _MAX_SLOWDOWN))
    factor = seconds / tail
    # atempo takes 0.5..100 per instance, so deeper slow-downs are a chain of them.
    tempos, rest = [], 1 / factor
    while rest < 0.5:
        tempos.append("atempo=0.5")
        rest /= 0.5
    tempos.append(f"atempo={rest:.5f}")
    return _Extension(
        inputs=[["-sseof", f"-{tail:.3f}"]],
        # framerate blends neighbouring frames, smoother than repeating each one `factor` times.
        video=f"[1:V:0]{prep},setpts={factor:.5f}*(PTS-STARTPTS),framerate=fps={fps}[xv]",
        audio=(
            f"[1:a:0]asetpts=PTS-STARTPTS,{','.join(tempos)},"
            f"afade=t=out:st={seconds * 0.3:.3f}:d={seconds * 0.7:.3f}[xa]"
        ),
    )


def _boomerang(prep: str, fps: str, duration: float, seconds: float, _: _Size) -> _Extension:
    if seconds <= duration:
        # Only the part played backwards is decoded and held in memory.
        return _Extension(
            inputs=[["-sseof", f"-{seconds:.3f}"]],
            video=f"[1:V:0]{prep},reverse[xv]",
            audio="[1:a:0]areverse[xa]",
        )
    loops = math.ceil(seconds / (2 * duration)) - 1
    return _Extension(
        inputs=[[], []],
        video=(
            f"[1:V:0]{prep},reverse[rv];[2:V:0]{prep}[fv];[rv][fv]concat=n=2:v=1:a=0,"
            # size is a ceiling; at the end of its input loop uses the frames it actually got.
            f"loop=loop={loops}:size=32767,setpts=N/({fps})/TB[xv]"
        ),
        audio=(
            "[1:a:0]areverse[ra];[ra][2:a:0]concat=n=2:v=0:a=1,"
            f"aloop=loop={loops}:size=2147483647[xa]"
        ),
    )


def _hold_push(prep: str, fps: str, duration: float, seconds: float, size: _Size) -> _Extension:
    frames = max(1, round(seconds * float(fps)))
    width, height = size
    zoom = 1 + min(max(_HOLD_ZOOM_PER_SECOND * seconds, 0.08), 0.3)
    t = f"((in-1)/{max(frames - 1, 1)})"
    z = f"pow({zoom:.4f},{t}*{t}*(3-2*{t}))"
    x0, x1 = f"-({z}-1)*{width / 2}", f"({z}+1)*{width / 2}"
    y0, y2 = f"-({z}-1)*{height / 2}", f"({z}+1)*{height / 2}"
    # The same sub-pixel perspective push as animate_photo: crop-based zooms judder when slow.
    corners = f"x0='{x0}':y0='{y0}':x1='{x1}':y1='{y0}':x2='{x0}':y2='{y2}':x3='{x1}':y3='{y2}'"
    return _Extension(
        inputs=[["-sseof", f"-{min(duration, 0.5):.3f}"]],
        video=(
            # The last decoded frame, wherever the container says the clip ends.
            f"[1:V:0]{prep},reverse,trim=end_frame=1,loop=loop={frames - 1}:size=1,"
            f"setpts=N/({fps})/TB,perspective={corners}:interpolation=linear"
            ":sense=destination:eval=frame[xv]"
        ),
        audio=None,
    )


_EXTENDERS: dict[str, Callable[[str, str, float, float, _Size], _Extension]] = {
    "slow_tail": _slow_tail,
    "boomerang": _boomerang,
    "hold_push": _hold_push,
}


async def extend_clip(
    src: Path,
    dest: Path,
    *,
    seconds: float,
    effect: str = "slow_tail",
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
) -> None:
    """Render the clip followed by ``seconds`` more made by ``effect`` (one of EXTEND_EFFECTS)."""
    if effect not in EXTEND_EFFECTS:
        raise MediaError(f"unknown effect {effect!r}; expected one of {', '.join(EXTEND_EFFECTS)}")
    if not 0 < seconds <= _MAX_EXTEND_SECONDS:
        raise MediaError(f"cannot extend by {seconds!r}s (0..{_MAX_EXTEND_SECONDS:g})")
    clip = await _inspect(src, tools)
    info = clip.info
    if not info.has_video or not info.duration or not info.width or not info.height:
        raise MediaError("cannot extend: no video stream or unknown duration")
    duration = info.duration
    size = (max(2, info.width // 2 * 2), max(2, info.height // 2 * 2))
    fps = f"{min(clip.fps or _MAX_FPS, _MAX_FPS):.3f}".rstrip("0").rstrip(".")
    scale = f"scale={size[0]}:{size[1]}:flags=bicubic"
    prep = f"fps={fps},{clip.sdr}{scale},format=yuv420p,setpts=PTS-STARTPTS"
    ext = _EXTENDERS[effect](prep, fps, duration, seconds, size)
    total = duration + seconds
    # Clone and trim: a clip whose video ends before its container still extends by `seconds`.
    graph = [
        f"[0:V:0]{prep}[mv]",
        ext.video.replace("[xv]", "[xv0]"),
        f"[xv0]tpad=stop_mode=clone:stop_duration={seconds:.3f},trim=duration={seconds:.3f}[xv]",
        "[mv][xv]concat=n=2:v=1:a=0[v]",
    ]
    maps = ["-map", "[v]"]
    if info.has_audio:
        graph.append(exactly("[0:a:0]asetpts=PTS-STARTPTS", duration, "ma"))
        if ext.audio is not None:
            graph.append(ext.audio.replace("[xa]", "[xa0]"))
            graph.append(exactly("[xa0]asetpts=PTS-STARTPTS", seconds, "xa"))
        else:
            graph.append(
                f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=duration={seconds:.3f},"
                f"{AUDIO_FORMAT},asetpts=PTS-STARTPTS[xa]"
            )
        graph.append("[ma][xa]concat=n=2:v=0:a=1[a]")
        maps += ["-map", "[a]", *_AAC]
    inputs = ["-i", input_arg(src)]
    for options in ext.inputs:
        inputs += [*options, "-i", input_arg(src)]
    with atomic_output(dest) as tmp:
        args = [
            *inputs, "-filter_complex", ";".join(graph), *maps, *_VIDEO_X264,
            "-map_metadata", "-1", "-t", f"{total:.3f}", *MP4_OUT, str(tmp),
        ]  # fmt: skip
        await run_ffmpeg(args, duration=total, on_progress=on_progress, tools=tools)
        os.replace(tmp, dest)


@dataclass(frozen=True)
class _Mood:
    bpm: float
    root: int  # MIDI note of the key
    # Four-note voicings in semitones above the root, one chord per `beats_per_chord`.
    chords: tuple[tuple[int, int, int, int], ...]
    beats_per_chord: int
    pulse_steps: int  # arpeggio notes per beat
    mix: tuple[float, float, float]  # pad, bass, pulse
    attack: float
    cutoff: int
    echo: str  # aecho's in_gain:out_gain:delays:decays


_MOOD_TABLE: dict[str, _Mood] = {
    "calm": _Mood(
        70, 57, ((0, 4, 7, 12), (-5, -1, 2, 7), (-3, 0, 4, 9), (-7, -3, 0, 5)),
        4, 1, (0.09, 0.25, 0.07), 0.8, 2500, "0.8:0.6:120|240:0.3|0.2",
    ),
    "happy": _Mood(
        116, 60, ((0, 4, 7, 12), (-3, 0, 4, 9), (-7, -3, 0, 5), (-5, -1, 2, 7)),
        4, 2, (0.07, 0.3, 0.14), 0.05, 5000, "0.8:0.7:60:0.15",
    ),
    "epic": _Mood(
        90, 50, ((0, 3, 7, 12), (-4, 0, 3, 8), (3, 7, 10, 15), (-2, 2, 5, 10)),
        4, 2, (0.1, 0.4, 0.12), 0.3, 3500, "0.8:0.6:180|360:0.35|0.2",
    ),
    "dark": _Mood(
        60, 52, ((0, 3, 7, 12), (-4, 0, 3, 8), (-7, -4, 0, 5), (-5, -1, 2, 7)),
        8, 1, (0.11, 0.35, 0.05), 1.5, 1400, "0.8:0.6:250|500:0.35|0.25",
    ),
    "dreamy": _Mood(
        76, 53, ((0, 4, 7, 11), (4, 7, 11, 14), (-3, 0, 4, 7), (-7, -3, 0, 4)),
        4, 2, (0.09, 0.2, 0.1), 1.0, 3000, "0.8:0.7:300|600:0.4|0.25",
    ),
}  # fmt: skip
MOODS: tuple[str, ...] = tuple(_MOOD_TABLE)

_MAX_SOUNDTRACK_SECONDS = 600.0
_LOUDNESS = "loudnorm=I=-16:TP=-1.5:LRA=11"
_M4A_OUT = ["-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", "-f", "ipod"]


def _hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _pick(index: str, values: list[str]) -> str:
    """An expression worth ``values[index]`` (ffmpeg expressions have no arrays)."""
    expr = values[-1]
    for i in range(len(values) - 2, -1, -1):
        expr = f"if(eq({index},{i}),{values[i]},{expr})"
    return expr


def _envelope(pos: str, length: float, attack: float, release: float) -> str:
    # Zero at both ends of each note, so the jumps in phase between notes never click.
    return f"min(1,{pos}/{attack:g})*min(1,({length:.5f}-{pos})/{release:g})"


def _music_expr(mood: _Mood) -> str:
    """An aevalsrc expression: a pad over the progression, a plucked bass and an arpeggio."""
    beat = 60 / mood.bpm
    bar = beat * mood.beats_per_chord
    step = beat / mood.pulse_steps
    chord = f"mod(ld(0),{len(mood.chords)})"
    setup = [f"st(0,floor(t/{bar:.5f}))", f"st(1,t-ld(0)*{bar:.5f})"]
    # ld(2)..ld(5): this chord's four frequencies; ld(6): time into the beat; ld(7): into the step.
    for voice in range(4):
        notes = [f"{_hz(mood.root + c[voice]):.3f}" for c in mood.chords]
        setup.append(f"st({2 + voice},{_pick(chord, notes)})")
    setup += [f"st(6,mod(t,{beat:.5f}))", f"st(7,mod(t,{step:.5f}))"]
    pad = "+".join(f"sin(2*PI*ld({v})*t)+0.3*sin(4*PI*ld({v})*t)" for v in range(2, 6))
    bass = f"sin(PI*ld(2)*t)*exp(-3*ld(6))*{_envelope('ld(6)', beat, 0.01, 0.03)}"
    arp_note = _pick(f"mod(floor(t/{step:.5f}),4)", [f"ld({v})" for v in range(2, 6)])
    arp = f"sin(4*PI*{arp_note}*t)*exp(-6*ld(7))*{_envelope('ld(7)', step, 0.005, 0.02)}"
    pad_gain, bass_gain, arp_gain = mood.mix
    voices = (
        f"{pad_gain}*{_envelope('ld(1)', bar, mood.attack, 0.3)}*({pad})"
        f"+{bass_gain}*{bass}+{arp_gain}*{arp}"
    )
    return ";".join([*setup, voices])


async def generate_soundtrack(
    dest: Path,
    *,
    seconds: float,
    mood: str = "calm",
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
) -> None:
    """Write an AAC .m4a music bed of exactly ``seconds`` in one of MOODS."""
    if mood not in _MOOD_TABLE:
        raise MediaError(f"unknown mood {mood!r}; expected one of {', '.join(MOODS)}")
    if not 0 < seconds <= _MAX_SOUNDTRACK_SECONDS:
        raise MediaError(f"bad soundtrack length {seconds!r}s")
    spec = _MOOD_TABLE[mood]
    fade_in, fade_out = min(1.5, seconds / 4), min(2.0, seconds / 4)
    graph = ",".join([
        f"aevalsrc='{_music_expr(spec)}':s=44100:d={seconds:.3f}",
        f"lowpass=f={spec.cutoff}",
        f"aecho={spec.echo}",
        # A 12 ms offset between the channels gives a mono synth some width.
        "pan=stereo|c0=c0|c1=c0,adelay=0|12",
        _LOUDNESS,
        "aresample=44100,aformat=sample_fmts=fltp:channel_layouts=stereo",
        f"apad,atrim=duration={seconds:.3f}",
        f"afade=t=in:d={fade_in:.3f}",
        f"afade=t=out:st={seconds - fade_out:.3f}:d={fade_out:.3f}",
    ])  # fmt: skip
    with atomic_output(dest) as tmp:
        args = ["-filter_complex", graph, *_M4A_OUT, str(tmp)]
        await run_ffmpeg(args, duration=seconds, on_progress=on_progress, tools=tools)
        os.replace(tmp, dest)


async def add_soundtrack(
    video: Path,
    audio: Path,
    dest: Path,
    *,
    music_volume: float = 0.8,
    keep_original: bool = True,
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
) -> None:
    """Lay ``audio`` under ``video``, looped or cut to its length and faded out at the end."""
    if not 0 <= music_volume <= 4:
        raise MediaError(f"bad music volume {music_volume!r}")
    clip, music = await _inspect(video, tools), await _inspect(audio, tools)
    info = clip.info
    if not info.has_video or not info.duration:
        raise MediaError("cannot add music: no video stream or unknown duration")
    if not music.info.has_audio:
        raise MediaError("cannot add music: the audio file has no sound")
    duration = info.duration
    fade = min(1.0, duration / 2)
    fit = f"{AUDIO_FORMAT},apad,atrim=duration={duration:.3f}"
    graph = [
        f"[1:a:0]{fit},volume={music_volume:g},"
        f"afade=t=out:st={duration - fade:.3f}:d={fade:.3f}[music]"
    ]
    if info.has_audio and keep_original:
        graph.append(exactly("[0:a:0]asetpts=PTS-STARTPTS", duration, "own0"))
        graph.append(f"[own0]volume={_ORIGINAL_GAIN}[own]")
        # The limiter catches peaks where loud music meets loud speech; latency keeps sync.
        graph.append(
            "[music][own]amix=inputs=2:duration=first:normalize=0,"
            "alimiter=limit=0.95:level=false:latency=true[a]"
        )
    else:
        graph.append("[music]anull[a]")
    if info.video_codec == "h264" and clip.pix_fmt == "yuv420p":
        video_out = ["-map", "0:V:0", "-c:v", "copy"]
    else:
        graph.append(f"[0:V:0]{clip.sdr}scale='trunc(iw/2)*2':'trunc(ih/2)*2',format=yuv420p[v]")
        video_out = ["-map", "[v]", "-fpsmax", str(_MAX_FPS), *_VIDEO_X264]
    # Looping a file whose length is unknown could spin forever on an empty stream.
    loop = ["-stream_loop", "-1"] if music.info.duration and music.info.duration >= 0.1 else []
    with atomic_output(dest) as tmp:
        args = [
            "-i", input_arg(video), *loop, "-i", input_arg(audio),
            "-filter_complex", ";".join(graph), *video_out, "-map", "[a]", *_AAC,
            "-t", f"{duration:.3f}", *MP4_OUT, str(tmp),
        ]  # fmt: skip
        await run_ffmpeg(args, duration=duration, on_progress=on_progress, tools=tools)
        os.replace(tmp, dest)


# Stems match the start of a word and may span words ("slow mo"); a trailing space makes a
# whole word, so "fun " is not found in "funeral".
_MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "calm": ("calm", "relax", "chill", "soft", "peace", "gentle", "спокой", "расслаб", "тих"),
    "happy": (
        "happy", "fun ", "funny", "upbeat", "joy", "cheer", "весел", "радост", "позитив", "счаст",
    ),
    "epic": (
        "epic", "cinematic", "trailer", "dramatic", "heroic", "эпич", "кино", "кинемат",
        "драмат", "трейлер",
    ),
    "dark": ("dark", "scary", "horror", "tense", "creepy", "мрачн", "страш", "ужас", "тревож"),
    "dreamy": (
        "dream", "ambient", "lofi", "lo fi", "romantic", "мечт", "романт", "эмбиент", "лофай",
    ),
}  # fmt: skip
_EFFECT_WORDS: dict[str, tuple[str, ...]] = {
    "slow_tail": ("slow motion", "slowmo", "slow mo", "slow down", "замедл", "слоумо"),
    "boomerang": ("boomerang", "reverse", "rewind", "loop", "бумеранг", "назад", "реверс", "обрат"),
    "hold_push": ("zoom", "push", "hold", "freeze", "приближ", "зум", "наезд", "стоп кадр"),
}  # fmt: skip


def _best_match(prompt: str, table: dict[str, tuple[str, ...]], default: str) -> str:
    # Words joined by single spaces, so stems and phrases match only at a word's start.
    text = " " + " ".join(re.findall(r"\w+", prompt.lower().replace("ё", "е"))) + " "
    scores = {key: sum(f" {stem}" in text for stem in stems) for key, stems in table.items()}
    best = max(scores, key=lambda key: scores[key])
    return best if scores[best] else default


def mood_for(prompt: str) -> str:
    """The soundtrack mood a prompt asks for (English or Russian keywords), else "calm"."""
    return _best_match(prompt, _MOOD_WORDS, "calm")


def extend_effect_for(prompt: str) -> str:
    """The extend effect a prompt asks for (English or Russian keywords), else "slow_tail"."""
    return _best_match(prompt, _EFFECT_WORDS, "slow_tail")
