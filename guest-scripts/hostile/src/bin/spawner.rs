//! Spawn modules through `ws2i.spawn`.
//! `spawner deep SELF`: spawn itself recursively. `spawner wide SELF N`: spawn `empty`-like children N times.
//! `spawner run PROG [ARGS…]`: spawn PROG once with ARGS and env `CHILD=1`, print its exit code.
//! `spawner out PROG FILE`: spawn PROG with stdout redirected to FILE.
//! `spawner all PROG N DIR`: spawn N children `PROG DIR i` at once (`ws2i.spawn_all`); print
//! their results and the largest (for `overlap`, the most children it saw running at once).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match a(1) {
        "deep" => {
            let depth: u32 = std::env::var("DEPTH").ok().and_then(|d| d.parse().ok()).unwrap_or(0);
            println!("depth {depth}");
            let env = format!("DEPTH={}", depth + 1);
            let r = hostile::spawn(a(2), &[a(2), "deep", a(2)], &[&env], "/", "");
            println!("child returned {r:?}");
        }
        "wide" => {
            let n: u32 = a(3).parse().unwrap_or(10);
            for i in 0..n {
                let r = hostile::spawn(a(2), &[a(2)], &[], "/", "");
                println!("spawn {i}: {r:?}");
            }
        }
        "run" => {
            let argv: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            let r = hostile::spawn(a(2), &argv, &["CHILD=1", "EXIT_CODE=7"], "/tmp", "");
            println!("spawn result {r:?}");
        }
        "out" => {
            let r = hostile::spawn(a(2), &[a(2)], &["CHILD=1"], "/", a(3));
            println!("spawn result {r:?}");
        }
        "all" => {
            // `spawner all PROG N DIR`: N children `PROG DIR i` at once through spawn_all.
            let n: usize = a(3).parse().unwrap_or(4);
            let _ = std::fs::create_dir_all(a(4));
            let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            let kids: Vec<(&str, Vec<&str>)> = ids.iter().map(|i| (a(2), vec![a(2), a(4), i.as_str()])).collect();
            match hostile::spawn_all(&kids) {
                Ok(rs) => {
                    let max = rs.iter().filter_map(|r| r.ok()).max().unwrap_or(0);
                    println!("all: {} children, results {rs:?}, most at once {max}", rs.len());
                }
                Err(e) => println!("all: refused {e}"),
            }
        }
        _ => std::process::exit(2),
    }
}
