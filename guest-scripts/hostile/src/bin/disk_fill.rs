//! Write to the rootfs forever.
use std::io::Write;
fn main() {
    let mut f = std::fs::File::create("/fill").expect("create /fill");
    let chunk = vec![7u8; 1 << 20];
    loop {
        f.write_all(&chunk).expect("write");
    }
}
