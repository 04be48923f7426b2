//! Print a line, then wait, several times: the log must show each line before exit.
fn main() {
    for i in 0..4 {
        println!("slow line {i}");
        eprintln!("slow err {i}");
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
}
