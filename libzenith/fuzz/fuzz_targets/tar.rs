//! Fuzzes the dataset open path with the input as a WebDataset `.tar` shard: open it with a modest memory budget
//! and read every chunk (see `common::open_and_read`).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::open_and_read(data, "tar"));
