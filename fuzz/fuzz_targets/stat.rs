//! Fuzz target `stat`: see `fdir::fuzzing::stat` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::stat(data) {
        panic!("property violated: {violated}");
    }
});
