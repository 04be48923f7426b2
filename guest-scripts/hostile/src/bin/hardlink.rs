//! Hardlink a file outside the rootfs into it, via `..` and via planted symlinks.
fn main() {
    for (from, to) in [("/../outside/secret", "/stolen1"), ("/secret_link", "/stolen2"), ("/d/hop1", "/stolen3"), ("/hop2", "/stolen4")] {
        match std::fs::hard_link(from, to) {
            Ok(()) => {
                println!("linked {from} -> {to}");
                hostile::try_read(to);
                hostile::try_write(to);
            }
            Err(e) => println!("blocked: hardlink {from}: {e}"),
        }
    }
}
