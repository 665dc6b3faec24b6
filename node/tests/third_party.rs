//! Third-party tools read what we write, and write what we read: opusinfo and opusdec
//! (opus-tools) and ffmpeg must accept our Ogg Opus and decode exactly the expected number of
//! samples; ffmpeg makes FLAC, MP3 and Ogg Vorbis inputs whose tags and audio we must read.

use std::path::Path;
use std::process::Command;

use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::import::{self, PreparedRelease, Release};
use nineten_node::library::Library;
use nineten_protocol::identity::Keypair;

use crate::signal::*;

fn tool(name: &str, args: &[&str]) -> std::process::Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed for this test (CI installs opus-tools and ffmpeg): {e}")
    })
}

fn prepare(files: &[std::path::PathBuf], title: &str) -> PreparedRelease {
    let artist = Keypair::from_seed([2; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Ada Sine".into()),
        title: title.into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    import::prepare(files, &release, &|_, _| {}).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn our_ogg_opus_is_accepted_and_decodes_to_the_exact_length() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, channels) in [(44_100u32, 2u16), (48_000, 1)] {
        let pcm = sweep(rate, channels, 3.3);
        let wav = write_wav(dir.path(), &format!("in-{rate}-{channels}.wav"), &pcm);
        let prepared = prepare(&[wav], "Third party");
        let track = &prepared.tracks[0];
        let opus = dir.path().join(format!("out-{rate}-{channels}.opus"));
        std::fs::write(&opus, &track.stream).unwrap();
        // Expected frames at 48 kHz: the resampled length.
        let expected = (pcm.frames() as u64 * 48_000 + u64::from(rate) / 2) / u64::from(rate);

        let info = tool("opusinfo", &[p(&opus)]);
        let text = String::from_utf8_lossy(&info.stdout).to_string()
            + &String::from_utf8_lossy(&info.stderr);
        assert!(info.status.success(), "opusinfo: {text}");
        assert!(
            !text.contains("WARNING") && !text.contains("ERROR"),
            "opusinfo: {text}"
        );

        let ff = tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-i",
                p(&opus),
                "-f",
                "s16le",
                "-acodec",
                "pcm_s16le",
                "-",
            ],
        );
        assert!(
            ff.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&ff.stderr)
        );
        let ff_frames = ff.stdout.len() as u64 / (2 * u64::from(channels));
        assert!(
            ff_frames.abs_diff(expected) <= 1,
            "ffmpeg decoded {ff_frames}, expected {expected}"
        );

        let wav_out = dir.path().join("opusdec.wav");
        let od = tool(
            "opusdec",
            &["--quiet", "--rate", "48000", p(&opus), p(&wav_out)],
        );
        assert!(
            od.status.success(),
            "opusdec: {}",
            String::from_utf8_lossy(&od.stderr)
        );
        let decoded = nineten_node::audio::decode::decode_file(&wav_out).unwrap();
        let od_frames = decoded.pcm.frames() as u64;
        assert!(
            od_frames.abs_diff(expected) <= 1,
            "opusdec decoded {od_frames}, expected {expected}"
        );

        let probe = tool(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "stream_tags",
                "-of",
                "json",
                p(&opus),
            ],
        );
        let tags = String::from_utf8_lossy(&probe.stdout).to_lowercase();
        assert!(tags.contains("\"artist\": \"ada sine\""), "{tags}");
        assert!(tags.contains("\"album\": \"third party\""), "{tags}");
        assert!(
            tags.contains("\"track\": \"1\"") || tags.contains("\"tracknumber\": \"1\""),
            "{tags}"
        );
    }
}

#[test]
fn flac_mp3_and_vorbis_inputs_import_with_their_tags() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(dir.path(), "source.wav", &sweep(44_100, 2, 3.0));
    let mut files = Vec::new();
    for (n, (ext, codec)) in [
        ("flac", "flac"),
        ("mp3", "libmp3lame"),
        ("ogg", "libvorbis"),
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("{}-input.{ext}", n + 1));
        let title = format!("title=From {ext}");
        let track = format!("track={}", 3 - n);
        let o = tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-i",
                p(&wav),
                "-c:a",
                codec,
                "-metadata",
                &title,
                "-metadata",
                &track,
                p(&out),
            ],
        );
        assert!(
            o.status.success(),
            "ffmpeg {ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        files.push(out);
    }
    let prepared = prepare(&files, "Formats");
    let tracks = &prepared.manifest.manifest.tracks;
    // Numbered by their TRACKNUMBER tags (3, 2, 1 in file order), titles from TITLE tags.
    let got: Vec<(u16, &str)> = tracks
        .iter()
        .map(|t| (t.number, t.title.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(1, "From ogg"), (2, "From mp3"), (3, "From flac")]
    );
    for t in tracks {
        assert!(
            t.duration_ms.abs_diff(3_000) <= 60,
            "{}: {} ms",
            t.title,
            t.duration_ms
        );
        assert_eq!(t.input_sample_rate, 44_100);
    }
}

#[test]
fn exported_file_is_the_stored_stream() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(dir.path(), "a.wav", &sweep(48_000, 2, 1.5));
    let prepared = prepare(&[wav], "Export");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = DataDir::new(Some(dir.path().join("node")));
        let library = Library::open(&data).await.unwrap();
        library.add_release(&prepared).await.unwrap();
        let found = library
            .find_track(&prepared.tracks[0].track.hash.to_string()[..8])
            .unwrap();
        let out = dir.path().join("export.opus");
        library.export(&found.track, &out).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), prepared.tracks[0].stream);
        library.shutdown().await.unwrap();
    });
}
