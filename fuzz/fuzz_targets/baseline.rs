//! Fuzz target `baseline`: see `fdir::fuzzing::baseline` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::baseline(data) {
        panic!("property violated: {violated}");
    }
});
