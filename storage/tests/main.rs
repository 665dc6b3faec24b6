//! Integration tests of the storage crate, on real sled databases in temporary directories.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod crash;
mod store;
mod util;
