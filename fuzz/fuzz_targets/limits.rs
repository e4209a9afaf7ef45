//! Fuzz target `limits`: see `fdir::fuzzing::limits` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::limits(data) {
        panic!("property violated: {violated}");
    }
});
