#![no_main]
// The entry point and what it covers: ws2i::fuzz::envfile.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws2i::fuzz::envfile(data));
