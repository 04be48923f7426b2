//! Connect to 127.0.0.1:<argv[1]> (the test listens there) and bind a listener.
fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "80".into());
    match std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
        Ok(_) => println!("LEAK: connected to 127.0.0.1:{port}"),
        Err(e) => println!("blocked: connect: {e}"),
    }
    match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(_) => println!("LEAK: bound a listener"),
        Err(e) => println!("blocked: bind: {e}"),
    }
}
