//! Why a response body is being dropped, when the server knows it: a
//! server that cuts a connection whose client stopped reading (`serve`'s
//! write-stall bound) says so for the bodies it drops, so that a stream
//! counts the end as a slow reader rather than a client that left.
//!
//! The server sets the mark in the drop of its own body wrapper, before the
//! inner body (the stream) is dropped on the same thread, and clears it
//! after: a thread-local read synchronously in between, which costs nothing
//! on any other path.

use std::cell::Cell;

thread_local! {
    static SLOW_READER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the bodies dropped on this thread from now on as cut for a slow
/// reader, until the returned guard is dropped.
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) fn slow_reader() -> Clear {
    SLOW_READER.with(|c| c.set(true));
    Clear(())
}

/// Whether the body being dropped now is cut for a slow reader.
pub(crate) fn is_slow_reader() -> bool {
    SLOW_READER.with(Cell::get)
}

/// Clears the mark when dropped.
#[derive(Debug)]
pub(crate) struct Clear(());

impl Drop for Clear {
    fn drop(&mut self) {
        SLOW_READER.with(|c| c.set(false));
    }
}
