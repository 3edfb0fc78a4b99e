//! The simulator (being built).
fn main() {}
