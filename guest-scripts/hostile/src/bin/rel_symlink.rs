//! Follow a planted relative chain (`/d/hop1 -> ../hop2`, `/hop2 -> ../outside/secret`) and one of our own.
fn main() {
    hostile::try_read("/d/hop1");
    hostile::try_write("/d/hop1");
    #[allow(deprecated)]
    match std::fs::soft_link("../../outside/secret", "/mine") {
        Ok(()) => println!("made /mine"),
        Err(e) => println!("blocked: symlink /mine: {e}"),
    }
    hostile::try_read("/mine");
    hostile::try_write("/mine");
}
