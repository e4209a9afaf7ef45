//! Fuzz target `maps`: see `fdir::fuzzing::maps` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::maps(data) {
        panic!("property violated: {violated}");
    }
});
