//! run: the image's command. This one prints the application's index.html.
use std::io;

fn main() {
    ws2i_sdk::run(|| -> io::Result<()> {
        let path = "/opt/app-root/src/index.html";
        let page = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        print!("{page}");
        Ok(())
    })
}
