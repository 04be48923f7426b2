#![no_main]
// The entry point and what it covers: ws2i::fuzz::image_metadata.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws2i::fuzz::image_metadata(data));
