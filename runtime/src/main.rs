fn main() -> std::process::ExitCode {
    ws2i::cli::main()
}
