//! Output that depends on the clock and on randomness: identical twice only in reproducible mode.
use std::collections::HashMap;
fn main() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let m: HashMap<u32, u32> = (0..32).map(|i| (i, i)).collect();
    let order: Vec<u32> = m.keys().copied().collect();
    let out = format!("now={}.{:09} order={order:?} elapsed={:?}\n", now.as_secs(), now.subsec_nanos(), t0.elapsed());
    std::fs::write("/repro.out", &out).expect("write");
    print!("{out}");
}
