//! Spend the disk on metadata, not bytes (issue 13): `inode_fill N` creates N empty files, N
//! directories and N symlinks under /inodes, then exits 0.
fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    std::fs::create_dir_all("/inodes").expect("mkdir /inodes");
    for i in 0..n {
        let d = format!("/inodes/{}", i / 1000);
        if i % 1000 == 0 {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        std::fs::write(format!("{d}/f{i}"), b"").expect("create");
        std::fs::create_dir(format!("{d}/d{i}")).expect("mkdir");
        #[allow(deprecated)]
        std::fs::soft_link("x", format!("{d}/l{i}")).expect("symlink");
    }
    println!("created {n} of each");
}
