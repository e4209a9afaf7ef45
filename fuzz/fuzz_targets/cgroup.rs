//! Fuzz target `cgroup`: see `fdir::fuzzing::cgroup` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::cgroup(data) {
        panic!("property violated: {violated}");
    }
});
