//! run: prints the application's index.txt (what a server would serve).
use std::io;

fn main() {
    ws2i_sdk::run(|| -> io::Result<()> {
        let index = std::fs::read_to_string("/opt/app-root/src/index.txt")
            .map_err(|e| io::Error::new(e.kind(), format!("/opt/app-root/src/index.txt: {e}")))?;
        print!("{index}");
        Ok(())
    })
}
