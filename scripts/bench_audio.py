#!/usr/bin/env python3
"""Audio benchmarks: `9ten import` and `9ten play` against opusenc, opusdec and ffmpeg on the
same files, in the same run, on this machine. Prints a Markdown report.

    cargo build --release --bin 9ten && python3 scripts/bench_audio.py

Needs opus-tools and ffmpeg (Debian packages). Files go to a temporary folder, removed after.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NINETEN = os.path.join(ROOT, "target", "release", "9ten")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

# A chord with a little noise, different in each channel: music-like enough for an encoder.
SOURCE = ("aevalsrc='0.2*sin(2*PI*220*t)*(1+0.3*sin(2*PI*0.5*t))+0.1*sin(2*PI*331*t)"
          "+0.05*sin(2*PI*1760*t+sin(2*PI*3*t))+0.03*(random(0)-0.5)"
          "|0.2*sin(2*PI*277*t)+0.1*sin(2*PI*415*t)*(1+0.3*sin(2*PI*0.7*t))"
          "+0.04*sin(2*PI*2489*t)+0.03*(random(1)-0.5)':s=48000:d={d}")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def timed(make_cmd, setup=None):
    """Median wall time of RUNS runs; `setup` runs untimed before each."""
    times = []
    for i in range(RUNS):
        if setup:
            setup(i)
        t = time.perf_counter()
        run(make_cmd(i))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    for tool in ["opusenc", "opusdec", "ffmpeg"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install opus-tools ffmpeg)")
    if not os.path.exists(NINETEN):
        sys.exit("build first: cargo build --release --bin 9ten")
    tmp = tempfile.mkdtemp(prefix="9ten-bench-")
    try:
        report(tmp)
    finally:
        shutil.rmtree(tmp)


def report(tmp):
    big = os.path.join(tmp, "ten-minutes.wav")
    run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", SOURCE.format(d=600), "-c:a", "pcm_s16le", big])
    album = os.path.join(tmp, "album")
    os.mkdir(album)
    for n in range(10):
        run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", SOURCE.format(d=60), "-af", f"volume={0.5 + n / 20}",
             "-c:a", "pcm_s16le", os.path.join(album, f"{n + 1:02} track.wav")])
    key = os.path.join(tmp, "artist.key")
    run([NINETEN, "key", "new", "--out", key, "--kind", "artist"])
    data = lambda i: os.path.join(tmp, f"node-{i}")
    fresh = lambda i: shutil.rmtree(data(i), ignore_errors=True)
    out = os.path.join(tmp, "out.opus")

    print(f"Machine: {os.cpu_count()} cores; median of {RUNS} runs each; wall time.\n")
    print("| what | 9ten | opusenc --bitrate 128 | ffmpeg -c:a libopus -b:a 128k | ratio to the faster |")
    print("|---|---|---|---|---|")
    ours = timed(lambda i: [NINETEN, "--data-dir", data(i), "import", big, "--artist-key", key,
                            "--release", "Bench"], setup=fresh)
    opusenc = timed(lambda i: ["opusenc", "--quiet", "--bitrate", "128", big, out])
    ffmpeg = timed(lambda i: ["ffmpeg", "-v", "error", "-y", "-i", big, "-c:a", "libopus", "-b:a", "128k", out])
    print(f"| import, one 10-minute 48 kHz stereo WAV | {ours:.2f} s | {opusenc:.2f} s | {ffmpeg:.2f} s "
          f"| **{ours / min(opusenc, ffmpeg):.2f}** |")

    files = sorted(os.path.join(album, f) for f in os.listdir(album))
    ours_album = timed(lambda i: [NINETEN, "--data-dir", data(i), "import", album, "--artist-key", key,
                                  "--release", "Album"], setup=fresh)
    seq = lambda tool_cmd: timed(lambda i: ["sh", "-c", " && ".join(tool_cmd(f) for f in files)])
    opusenc_album = seq(lambda f: f"opusenc --quiet --bitrate 128 '{f}' '{out}'")
    ffmpeg_album = seq(lambda f: f"ffmpeg -v error -y -i '{f}' -c:a libopus -b:a 128k '{out}'")
    print(f"| import, 10-track album (10 × 1 min) | {ours_album:.2f} s | {opusenc_album:.2f} s | "
          f"{ffmpeg_album:.2f} s | **{ours_album / min(opusenc_album, ffmpeg_album):.2f}** |")

    # Decoding: the 10-minute track, to nowhere.
    listing = run([NINETEN, "--data-dir", data(0), "import", big, "--artist-key", key, "--release", "Decode"]).stdout
    track = re.search(r"^([0-9a-f]{64})  ", listing, re.M).group(1)
    run([NINETEN, "--data-dir", data(0), "export", track, out])
    ours_dec = timed(lambda i: [NINETEN, "--data-dir", data(0), "play", track, "--sink", "null"])
    opusdec = timed(lambda i: ["opusdec", "--quiet", "--rate", "48000", out, os.path.join(tmp, "dec.wav")])
    ffdec = timed(lambda i: ["ffmpeg", "-v", "error", "-i", out, "-f", "null", "-"])
    print()
    print("| decode 10 minutes of Ogg Opus | 9ten play --sink null | opusdec | ffmpeg -f null |")
    print("|---|---|---|---|")
    print(f"| wall time | {ours_dec:.2f} s | {opusdec:.2f} s | {ffdec:.2f} s |")
    print(f"| × real time | **{600 / ours_dec:.0f}×** | {600 / opusdec:.0f}× | {600 / ffdec:.0f}× |")

    # Time to first sample, from the command's start (library opened, track loaded, decoded).
    command, warm = [], []
    for _ in range(30):
        err = run([NINETEN, "--data-dir", data(0), "play", track, "--sink", "null"]).stderr
        m = re.search(r"first sample ([0-9.]+) ms after the command started \(([0-9.]+) ms after the library", err)
        command.append(float(m.group(1)))
        warm.append(float(m.group(2)))
    print()
    print("| time to first decoded sample, local 10-minute track, 30 plays | p50 | p95 | max |")
    print("|---|---|---|---|")
    for name, xs in [("from the `play` command's start (stores opened, track found, decoded)", command),
                     ("from the library being open (as in a running node)", warm)]:
        xs.sort()
        print(f"| {name} | **{statistics.median(xs):.1f} ms** | {xs[int(len(xs) * 0.95) - 1]:.1f} ms | {xs[-1]:.1f} ms |")


if __name__ == "__main__":
    main()
