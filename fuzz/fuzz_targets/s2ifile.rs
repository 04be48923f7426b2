#![no_main]
// The entry point and what it covers: ws2i::fuzz::s2ifile.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws2i::fuzz::s2ifile(data));
