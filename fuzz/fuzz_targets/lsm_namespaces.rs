//! Fuzz target `lsm_namespaces`: see `fdir::fuzzing::lsm_namespaces` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::lsm_namespaces(data) {
        panic!("property violated: {violated}");
    }
});
