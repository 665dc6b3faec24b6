//! Integration tests of the storage crate, on real sled databases in temporary directories.

mod crash;
mod store;
mod util;
