//! Fuzz target `status`: see `fdir::fuzzing::status` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::status(data) {
        panic!("property violated: {violated}");
    }
});
