//! `chmodder PATH MODE(octal)…`: call `ws2i.chmod` on each pair and print the errno.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let mode = u32::from_str_radix(pair.get(1).map(String::as_str).unwrap_or("755"), 8).unwrap_or(0o755);
        println!("chmod {} {:o} = {}", pair[0], mode, hostile::chmod(&pair[0], mode));
    }
}
