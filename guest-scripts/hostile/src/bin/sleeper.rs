//! Block in the host (poll_oneoff) for a long time.
fn main() {
    println!("sleeping");
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
