//! Fuzz target `kernel`: see `fdir::fuzzing::kernel` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::kernel(data) {
        panic!("property violated: {violated}");
    }
});
