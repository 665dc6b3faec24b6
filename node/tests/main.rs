//! Integration tests of the node crate: real files, real libopus, real stores on disk, and
//! third-party tools (opusinfo, opusdec, ffmpeg) reading what we write.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod bad_input;
mod control;
mod daemon;
mod hostile;
mod library;
mod month;
mod net;
mod roundtrip;
mod signal;
mod support;
mod third_party;
mod transfer;
