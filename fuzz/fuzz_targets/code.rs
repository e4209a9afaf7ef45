//! Fuzz target `code`: see `fdir::fuzzing::code` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::code(data) {
        panic!("property violated: {violated}");
    }
});
