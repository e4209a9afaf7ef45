//! Fuzz target `cgroup_limits`: see `fdir::fuzzing::cgroup_limits` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violated) = fdir::fuzzing::cgroup_limits(data) {
        panic!("property violated: {violated}");
    }
});
