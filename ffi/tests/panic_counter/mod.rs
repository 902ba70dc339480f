//! Counts every panic on the calling thread, caught or not. A panic inside
//! a policy is caught at the C boundary and answered with FALLBACK, so a
//! test that only checks the answers would pass on a library that panics;
//! libFuzzer counts such a panic as a crash, and so do these tests. The
//! count is per thread, so tests running side by side do not see each
//! other's panics.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}
static INSTALL: Once = Once::new();

/// Install the counting hook (once per binary) and return how many panics
/// this thread has had so far.
pub fn panics_so_far() -> usize {
    INSTALL.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            default_hook(info);
        }));
    });
    PANICS.with(Cell::get)
}
