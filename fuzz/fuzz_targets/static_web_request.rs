#![no_main]
// What a client sends to a static-web site: static_web::fuzz_request (guest-scripts/static-web).
libfuzzer_sys::fuzz_target!(|data: &[u8]| static_web::fuzz_request(data));
