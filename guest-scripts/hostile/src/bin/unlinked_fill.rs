//! Write to a file after unlinking it (issue 13): no walk of the rootfs sees those bytes, but
//! the disk does. `unlinked_fill MIB` writes MIB MiB (forever without an argument), then exits 0.
use std::io::Write;
fn main() {
    let limit: Option<u64> = std::env::args().nth(1).and_then(|n| n.parse().ok());
    let mut f = std::fs::File::create("/scratch").expect("create /scratch");
    std::fs::remove_file("/scratch").expect("unlink /scratch");
    let chunk = vec![7u8; 1 << 20];
    let mut written = 0u64;
    while limit.is_none_or(|l| written < l) {
        f.write_all(&chunk).expect("write");
        written += 1;
    }
    println!("wrote {written} MiB to an unlinked file");
}
