//! Generates `kairos.h` into OUT_DIR with cbindgen; the checked-in copy in
//! `include/` is compared with it by the tests.

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=src");
    // The header also carries policy-core's enums and their docs.
    println!("cargo:rerun-if-changed=../policy-core/src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("valid cbindgen.toml");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(format!("{out_dir}/kairos.h"));
        }
        Err(err) => panic!("cbindgen failed: {err}"),
    }
}
