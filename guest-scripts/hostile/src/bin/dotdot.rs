//! Climb out with `..`: argv[1] is a path relative to the rootfs's parent (e.g. `outside/secret`).
fn main() {
    let target = std::env::args().nth(1).unwrap_or_else(|| "outside/secret".into());
    hostile::try_read("/../../etc/passwd");
    hostile::try_read("../../../etc/passwd");
    for p in [format!("/../{target}"), format!("/../../../../{target}"), format!("../{target}")] {
        hostile::try_read(&p);
        hostile::try_write(&p);
    }
}
