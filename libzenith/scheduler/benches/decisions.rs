//! Decision latency (being built).
fn main() {}
