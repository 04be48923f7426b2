//! Print argv[1] lines (default: a million) of 100 bytes, then exit 0.
fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let pad = "x".repeat(90);
    for i in 0..n {
        println!("{i:08} {pad}");
    }
}
