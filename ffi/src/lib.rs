//! C ABI for the Kairos convergence policy (filled in by the ffi issue).
