//! Fuzz target `policy`: see `fdir::fuzzing::policy` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::policy(data) {
        panic!("property violated: {violated}");
    }
});
