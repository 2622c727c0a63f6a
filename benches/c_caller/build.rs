//! Compiles `c_calls.c` against the committed header, at -O2 as C servers are usually
//! built (Debian builds nginx with -O2), with warnings as errors.

fn main() {
    println!("cargo:rerun-if-changed=c_calls.c");
    println!("cargo:rerun-if-changed=../../include/ratecore.h");
    cc::Build::new()
        .file("c_calls.c")
        .include("../../include")
        .std("c11")
        .opt_level(2)
        .flag("-Wall")
        .flag("-Wextra")
        .warnings_into_errors(true)
        .compile("ratecore_bench_c_caller");
}
