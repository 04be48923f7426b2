//! Print argv, the environment and the cwd; exit with `EXIT_CODE` if set.
fn main() {
    for a in std::env::args() {
        println!("arg={a}");
    }
    for (k, v) in std::env::vars() {
        println!("env={k}={v}");
    }
    println!("cwd={}", std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default());
    let code: i32 = std::env::var("EXIT_CODE").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
    std::process::exit(code);
}
