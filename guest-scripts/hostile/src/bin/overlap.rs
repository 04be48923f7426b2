//! `overlap DIR ID`: a child of `spawner all`. Marks itself running (DIR/ID), waits a little,
//! counts the markers (the children running at the same moment), unmarks itself, and exits
//! with the count, so the parent learns how many ran at once.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, id) = (args.get(1).cloned().unwrap_or_default(), args.get(2).cloned().unwrap_or_default());
    let me = format!("{dir}/{id}");
    if std::fs::write(&me, b"").is_err() {
        std::process::exit(100);
    }
    let mut most = 0;
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        most = most.max(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0));
    }
    let _ = std::fs::remove_file(&me);
    std::process::exit(most as i32);
}
