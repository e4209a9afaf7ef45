//! Fuzz target `mountinfo`: see `fdir::fuzzing::mountinfo` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::mountinfo(data) {
        panic!("property violated: {violated}");
    }
});
