//! Fuzz target `seccomp_filters`: see `fdir::fuzzing::seccomp_filters` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::seccomp_filters(data) {
        panic!("property violated: {violated}");
    }
});
