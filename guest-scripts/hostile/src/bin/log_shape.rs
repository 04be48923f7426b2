//! Output shaped to make a log collector hoard memory (issue 13).
//! `log_shape empty MIB`: MIB MiB of empty lines. `log_shape long MIB`: one line of MIB MiB, no
//! newline. Written to stdout 1 MiB per write.
use std::io::Write;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(16);
    let byte = match args.get(1).map(String::as_str) {
        Some("empty") => b'\n',
        Some("long") => b'x',
        _ => std::process::exit(2),
    };
    let chunk = vec![byte; 1 << 20];
    let mut out = std::io::stdout().lock();
    for _ in 0..mib {
        out.write_all(&chunk).expect("write");
    }
    out.flush().expect("flush");
}
