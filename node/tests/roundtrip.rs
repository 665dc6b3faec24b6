//! Import, then decode: the audio that comes out is the audio that went in, sample-aligned,
//! to an SNR bound per kind of signal, with exactly as many samples.

use std::io::Cursor;

use nineten_node::audio::encode::Settings;
use nineten_node::audio::{Pcm, decode, ogg, playback, resample};
use nineten_node::import::{self, Release};
use nineten_protocol::identity::Keypair;

use crate::signal::*;

/// Imports one WAV file; returns the decoded stream (48 kHz) and the reference it should match
/// (the source, decoded and resampled to 48 kHz).
pub(crate) fn round_trip(pcm: &Pcm, name: &str) -> (Vec<f32>, Vec<f32>, u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wav(dir.path(), name, pcm);
    let artist = Keypair::from_seed([1; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Test".into()),
        title: "Round trip".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    let prepared = import::prepare(std::slice::from_ref(&path), &release, &|_, _| {}).unwrap();
    let t = &prepared.tracks[0];
    let index = nineten_node::audio::seek::SeekIndex::from_bytes(&t.index).unwrap();
    let head = ogg::read_head(&mut Cursor::new(&t.stream)).unwrap();
    let mut out = Vec::new();
    playback::decode(Cursor::new(&t.stream), &head, &index, 0, &mut |s| {
        out.extend_from_slice(s);
        Ok(())
    })
    .unwrap();
    let reference = resample::to_opus_rate(decode::decode_file(&path).unwrap().pcm)
        .unwrap()
        .samples;
    (out, reference, t.track.duration_ms)
}

#[test]
fn sweeps_survive_at_both_rates_mono_and_stereo() {
    for (rate, channels) in [(48_000, 1), (48_000, 2), (44_100, 1), (44_100, 2)] {
        let pcm = sweep(rate, channels, 4.0);
        let (out, reference, duration_ms) = round_trip(&pcm, "sweep.wav");
        assert_eq!(
            out.len(),
            reference.len(),
            "{rate} Hz {channels} ch: sample count"
        );
        let snr = snr_db(&reference, &out);
        eprintln!("sweep {rate} Hz {channels} ch: SNR {snr:.1} dB");
        assert!(snr > 15.0, "{rate} Hz {channels} ch: SNR {snr:.1} dB");
        assert_eq!(duration_ms, 4000);
    }
}

#[test]
fn noise_survives() {
    let (out, reference, _) = round_trip(&noise(48_000, 2, 3.0), "noise.wav");
    assert_eq!(out.len(), reference.len());
    let snr = snr_db(&reference, &out);
    eprintln!("noise: SNR {snr:.1} dB");
    // Opus keeps the energy of noise per band, not its waveform: the SNR is low, but one
    // sample of misalignment would bring it to about 0 dB.
    assert!(snr > 2.0, "SNR {snr:.1} dB");
    let rms =
        |x: &[f32]| (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let level_db = 20.0 * (rms(&out) / rms(&reference)).log10();
    assert!(level_db.abs() < 1.0, "level changed by {level_db:.2} dB");
}

#[test]
fn silence_stays_silent() {
    let (out, reference, _) = round_trip(&silence(44_100, 2, 2.0), "silence.wav");
    assert_eq!(out.len(), reference.len());
    let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak < 1e-3, "peak {peak}");
}

#[test]
fn seeking_lands_within_one_frame() {
    let pcm = sweep(48_000, 1, 6.0);
    let dir = tempfile::tempdir().unwrap();
    let path = write_wav(dir.path(), "seek.wav", &pcm);
    let artist = Keypair::from_seed([1; 32]);
    let release = Release {
        artist: &artist,
        artist_name: None,
        title: "Seek".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    let prepared = import::prepare(&[path], &release, &|_, _| {}).unwrap();
    let t = &prepared.tracks[0];
    let index = nineten_node::audio::seek::SeekIndex::from_bytes(&t.index).unwrap();
    assert!(index.entries.len() >= 6, "about one entry a second");
    let head = ogg::read_head(&mut Cursor::new(&t.stream)).unwrap();
    for from_ms in [0u64, 1_000, 2_345, 4_999] {
        let mut out = Vec::new();
        playback::decode(Cursor::new(&t.stream), &head, &index, from_ms, &mut |s| {
            out.extend_from_slice(s);
            Ok(())
        })
        .unwrap();
        let target = (from_ms * 48) as usize;
        assert_eq!(out.len(), pcm.samples.len() - target, "from {from_ms} ms");
        // Where in the source does the first 20 ms of output fit best? Within one frame
        // (960 samples) of the target. The sweep makes the match unambiguous.
        let window = &out[..960];
        let best = (target.saturating_sub(2_000)..(target + 2_000).min(pcm.samples.len() - 960))
            .min_by(|&a, &b| {
                let err = |o: usize| -> f32 {
                    window
                        .iter()
                        .zip(&pcm.samples[o..])
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum()
                };
                err(a).total_cmp(&err(b))
            })
            .unwrap();
        assert!(
            best.abs_diff(target) <= 960,
            "from {from_ms} ms: landed at {best}, wanted {target}"
        );
    }
}
