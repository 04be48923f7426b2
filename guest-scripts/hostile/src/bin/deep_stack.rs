//! Nested spawns, each deep in its wasm stack (issue 13): they must not add up on one host stack.
//! `deep_stack LEVELS`: find how deep this module can recurse (probe children that recurse too
//! deep trap, which the parent sees as exit code 134), then recurse to 90% of that and at the
//! bottom spawn itself to do the same, LEVELS deep. Prints `frames N`, then `level L: …` per level.
//! `deep_stack probe FRAMES`: recurse FRAMES deep, exit 0. `deep_stack nest` (env FRAMES, LEVELS):
//! one level of the chain.
const SELF: &str = "/bin/deep_stack.wasm";

/// Not a loop in disguise: the call's result goes through black_box before it is used.
#[inline(never)]
fn recurse(n: u32, bottom: &mut dyn FnMut()) -> u64 {
    if n == 0 {
        bottom();
        return 1;
    }
    let (a, b) = (std::hint::black_box(n as u64), std::hint::black_box(n as u64 * 3));
    std::hint::black_box(recurse(std::hint::black_box(n - 1), bottom)).wrapping_add(a ^ b)
}

fn env(k: &str) -> u32 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn probe_ok(frames: u32) -> bool {
    let f = frames.to_string();
    hostile::spawn(SELF, &[SELF, "probe", &f], &[], "/", "") == Ok(0)
}

/// The most frames a probe survives, within 2%.
fn calibrate() -> u32 {
    let (mut lo, mut hi) = (0u32, 1000u32);
    while hi < (1 << 24) && probe_ok(hi) {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > lo / 50 + 1 {
        let mid = lo + (hi - lo) / 2;
        if probe_ok(mid) {
            lo = mid
        } else {
            hi = mid
        }
    }
    lo
}

fn nest(frames: u32, levels: u32) -> bool {
    let mut ok = true;
    recurse(frames / 10 * 9, &mut || {
        if levels > 0 {
            let env = [format!("FRAMES={frames}"), format!("LEVELS={}", levels - 1)];
            let env: Vec<&str> = env.iter().map(String::as_str).collect();
            let r = hostile::spawn(SELF, &[SELF, "nest"], &env, "/", "");
            println!("level {levels}: child {r:?}");
            ok = r == Ok(0);
        }
    });
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("probe") => {
            std::hint::black_box(recurse(args[2].parse().unwrap_or(0), &mut || {}));
        }
        Some("nest") => std::process::exit(if nest(env("FRAMES"), env("LEVELS")) { 0 } else { 1 }),
        Some(levels) => {
            let frames = calibrate();
            println!("frames {frames}");
            std::process::exit(if nest(frames, levels.parse().unwrap_or(4)) { 0 } else { 1 })
        }
        None => std::process::exit(2),
    }
}
