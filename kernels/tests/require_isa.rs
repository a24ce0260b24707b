//! `CLIP_REQUIRE_ISA`: a kernel set the variable names but this CPU cannot run fails the kernel
//! tests instead of being skipped. The test below runs this binary again with the variable
//! set and checks the outcome.

mod common;

use clip_kernels::dispatch::REQUIRE_ISA_ENV;
use clip_kernels::Isa;
use std::process::{Command, Output};

/// What every kernel test does first: the kernel sets to run, through `common::isas`. Also the
/// direct check of a CI run's `CLIP_REQUIRE_ISA`.
#[test]
fn every_kernel_set_this_run_requires_is_tested() {
    let sets = common::isas("every_kernel_set_this_run_requires_is_tested");
    assert!(sets.contains(&Isa::Scalar));
}

/// This test binary, running only the test above, with `CLIP_REQUIRE_ISA=require`.
fn probe(require: &str) -> Output {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "every_kernel_set_this_run_requires_is_tested",
            "--test-threads=1",
        ])
        .env(REQUIRE_ISA_ENV, require)
        .output()
        .expect("run the test binary")
}

#[test]
fn naming_a_set_this_cpu_lacks_fails_the_tests() {
    // No CPU runs both the x86_64 sets and NEON, so one set is always missing.
    let missing = Isa::ALL
        .into_iter()
        .find(|isa| !isa.is_available())
        .expect("a kernel set this CPU lacks");
    let out = probe(&format!("scalar,{missing}"));
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{REQUIRE_ISA_ENV}=scalar,{missing} passed:\n{text}"
    );
    assert!(
        text.contains(&format!("cannot run the {missing} kernels")),
        "{text}"
    );

    // A misspelt name fails too (it would otherwise require nothing).
    let out = probe("avx513");
    assert!(!out.status.success(), "{REQUIRE_ISA_ENV}=avx513 passed");

    // Naming only sets this CPU runs passes.
    let have: Vec<&str> = Isa::available().iter().map(|isa| isa.name()).collect();
    let out = probe(&have.join(","));
    assert!(
        out.status.success(),
        "{REQUIRE_ISA_ENV}={} failed:\n{}",
        have.join(","),
        String::from_utf8_lossy(&out.stdout)
    );
}
