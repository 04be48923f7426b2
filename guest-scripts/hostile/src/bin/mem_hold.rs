//! Hold memory across a spawn (issue 13: the memory budget is the run's, not each module's).
//! `mem_hold MIB [PROG ARGS…]`: allocate and touch MIB MiB, then spawn PROG with ARGS (if given)
//! and print its result, `SPAWNS` times (env, default 1) one after another; exit 0 if every child
//! exited 0 (or there was none).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
    let hoard: Vec<Vec<u8>> = (0..mib).map(|_| vec![1u8; 1 << 20]).collect();
    std::hint::black_box(&hoard);
    println!("holding {mib} MiB");
    if let Some(prog) = args.get(2) {
        let argv: Vec<&str> = args[2..].iter().map(String::as_str).collect();
        let times: u32 = std::env::var("SPAWNS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
        let mut all_ok = true;
        for _ in 0..times {
            let r = hostile::spawn(prog, &argv, &[], "/", "");
            println!("child {r:?}");
            all_ok &= r == Ok(0);
        }
        std::hint::black_box(&hoard);
        std::process::exit(if all_ok { 0 } else { 1 });
    }
}
