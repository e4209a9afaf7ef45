//! The `fdir` command line (built out in the CLI issue).

fn main() {
    println!("fdir {}", env!("CARGO_PKG_VERSION"));
}
