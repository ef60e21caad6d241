//! The `strand` command line.

fn main() {}
