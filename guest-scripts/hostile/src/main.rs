fn main() { println!("hostile guests live in src/bin"); }
