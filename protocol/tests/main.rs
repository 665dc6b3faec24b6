//! Integration tests of the protocol crate: spec vectors from an independent implementation,
//! every settlement rule and tie-break, and property tests of settlement's invariants.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod properties;
mod review;
mod settlement;
mod util;
mod vectors;
